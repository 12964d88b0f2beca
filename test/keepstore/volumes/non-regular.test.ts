import t, { type Test } from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { createDirectoryVolume } from '../../../keepstore/volumes/directory-volume.js'
import type { Volume } from '../../../keepstore/volumes/volume.js'
import { ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY, call, freePorts, startCluster } from '../../helpers/cluster.js'
import { chunked, collect, md5 } from '../../helpers/volume-suite.js'
import { createSigner } from '../../../shared/signer.js'

const UUID = 'zzzzz-nyw5e-000000000000000'
const FOO = Buffer.from('foo')
const FOO_HASH = md5(FOO)
const BAR = Buffer.from('bar, a longer block')
const blockPath = (root: string, hash: string): string => `${root}/${hash.slice(0, 3)}/${hash}`
const signer = createSigner({ key: SIGNING_KEY, ttlSeconds: 336 * 3600, maxClockSkewSeconds: 600 })
const TOKEN = 'user-token-abcdefghijklmnopqrstuvwxyz'
const LIVENESS_MS = 5000

function hasMkfifo(): boolean {
  try {
    execFileSync('mkfifo', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** What a planted block file can be instead of a regular file. */
const PLANTS: Record<string, (file: string, outside: string) => void> = {
  'a symlink to /dev/zero': (file) => symlinkSync('/dev/zero', file),
  'a symlink to a file holding the right bytes': (file, outside) => {
    writeFileSync(outside, FOO)
    symlinkSync(outside, file)
  },
  'a directory': (file) => mkdirSync(file),
  'a FIFO': (file) => execFileSync('mkfifo', [file]),
}

async function openVolume(t: Test, root: string): Promise<Volume> {
  const volume = createDirectoryVolume({ uuid: UUID, root })
  await volume.open()
  t.teardown(() => volume.close())
  return volume
}

for (const [what, plant] of Object.entries(PLANTS)) {
  const skip = what === 'a FIFO' && !hasMkfifo() ? 'needs the mkfifo command' : false
  t.test(`directory volume: a block file that is ${what} is corrupt, never followed, never listed`, { skip }, async (t) => {
    const root = t.testdir({ outside: {} })
    const volume = await openVolume(t, root)
    await volume.write(md5(BAR), chunked(BAR))
    mkdirSync(path.dirname(blockPath(root, FOO_HASH)), { recursive: true })
    const outside = `${root}/outside/foo`
    plant(blockPath(root, FOO_HASH), outside)
    await t.rejects(volume.read(FOO_HASH), { code: 'KEEP_CORRUPT' }, 'read refuses it before any byte')
    await t.rejects(volume.stat(FOO_HASH), { code: 'KEEP_CORRUPT' }, 'stat does not follow it')
    await t.rejects(volume.touch(FOO_HASH), { code: 'KEEP_CORRUPT' }, 'touch does not follow it')
    await t.rejects(volume.trash(FOO_HASH, { deadline: 0 }), { code: 'KEEP_CORRUPT' }, 'trash does not take it for a block')
    t.same((await collect(volume.index(''))).map((s) => s.hash), [md5(BAR)], 'the index lists only the regular block')
    if (what !== 'a directory') {
      // A PUT of the real bytes replaces the planted file instead of "touching" what it points at.
      const result = await volume.write(FOO_HASH, chunked(FOO))
      t.equal(result.outcome, 'written')
      t.ok(lstatSync(blockPath(root, FOO_HASH)).isFile(), 'a regular file now')
      t.same(readFileSync(blockPath(root, FOO_HASH)), FOO)
      t.same((await collect(volume.index(''))).map((s) => s.hash).sort(), [md5(BAR), FOO_HASH].sort())
    }
  })
}

t.test('directory volume: touch through a planted symlink leaves the target alone', async (t) => {
  const root = t.testdir({ outside: { foo: 'foo' } })
  const volume = await openVolume(t, root)
  mkdirSync(path.dirname(blockPath(root, FOO_HASH)), { recursive: true })
  execFileSync('touch', ['-d', '@1707249451', `${root}/outside/foo`])
  symlinkSync(`${root}/outside/foo`, blockPath(root, FOO_HASH))
  await volume.touch(FOO_HASH).catch(() => undefined)
  await volume.trash(FOO_HASH, { deadline: 0, notNewerThan: 2n ** 62n }).catch(() => undefined)
  t.equal(statSync(`${root}/outside/foo`).mtimeMs, 1707249451000, 'the target mtime is unchanged')
  t.ok(lstatSync(blockPath(root, FOO_HASH)).isSymbolicLink(), 'the link was not trashed as a block')
})

/** One request with a liveness deadline: a hang fails the test instead of stalling it. */
async function ask(url: string, method: 'GET' | 'HEAD', pathname: string): Promise<{ status: number; length: string | undefined; body: Buffer }> {
  const res = await request(new URL(pathname, url), {
    method,
    headers: { authorization: `Bearer ${TOKEN}` },
    signal: AbortSignal.timeout(LIVENESS_MS),
  })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, length: res.headers['content-length'] as string | undefined, body }
}

t.test('GET and HEAD of a non-regular block file → 502 before any byte, and the index leaves it out', async (t) => {
  const cluster = await startCluster(t, { volumes: [{ driver: 'directory' }] })
  const url = cluster.urls[0]!
  const root = cluster.config.keepstores[0]!.volumes[0]!.root!
  const outside = t.testdir({})
  for (const [what, plant] of Object.entries(PLANTS)) {
    if (what === 'a FIFO' && !hasMkfifo()) {
      t.comment('skipped: a FIFO needs the mkfifo command')
      continue
    }
    const data = Buffer.from(`block for ${what}`)
    const hash = what.includes('right bytes') ? FOO_HASH : md5(data)
    const size = what.includes('right bytes') ? FOO.length : data.length
    mkdirSync(path.dirname(blockPath(root, hash)), { recursive: true })
    plant(blockPath(root, hash), `${outside}/${hash}`)
    const locator = signer.sign(`${hash}+${size}`, TOKEN)
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await ask(url, method, `/${locator}`)
      t.equal(res.status, 502, `${what}: ${method} → 502`)
      t.not(res.length, '0', `${what}: ${method} never promises an empty block`)
    }
    const index = await call(url, 'GET', '/index', { token: ADMIN_TOKEN })
    t.notMatch(index.text, hash, `${what}: not in the index`)
  }
  t.equal((await call(url, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN })).status, 200, 'still answering')
})

t.test('as Keep\'s BlockRead (a stored length other than the size hint is errChecksum, 502): a stored file longer or shorter than the hint → GET and HEAD 502 before any byte', async (t) => {
  const cluster = await startCluster(t, { volumes: [{ driver: 'directory' }] })
  const url = cluster.urls[0]!
  t.equal((await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })).status, 200)
  for (const [hint, stored] of [[FOO.length - 1, 'longer'], [FOO.length + 1, 'shorter']] as const) {
    const locator = signer.sign(`${FOO_HASH}+${hint}`, TOKEN)
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await ask(url, method, `/${locator}`)
      t.equal(res.status, 502, `stored file ${stored} than the hint ${hint}: ${method} → 502`)
      t.not(res.length, String(hint), `${stored}, ${method}: no Content-Length of a block was promised`)
      if (method === 'GET') t.match(res.body.toString(), /^[^\n]+\n$/, `${stored}: the body is a one-line reason, not block bytes`)
    }
  }
  const right = await ask(url, 'GET', `/${signer.sign(`${FOO_HASH}+3`, TOKEN)}`)
  t.equal(right.status, 200, 'the right hint still reads')
  t.same(right.body, FOO)
  const noHint = await ask(url, 'HEAD', `/${signer.sign(FOO_HASH, TOKEN)}`)
  t.equal(noHint.status, 200, 'HEAD without a size hint still answers')
  t.equal(noHint.length, '3')
})

t.test('a stored file longer or shorter than its hash says (same hint) is never served as a whole body', async (t) => {
  const cluster = await startCluster(t, { volumes: [{ driver: 'directory' }] })
  const url = cluster.urls[0]!
  const root = cluster.config.keepstores[0]!.volumes[0]!.root!
  t.equal((await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })).status, 200)
  for (const stored of ['fo', 'fooo']) {
    await writeFile(blockPath(root, FOO_HASH), stored)
    for (const method of ['GET', 'HEAD'] as const) {
      const res = await ask(url, method, `/${signer.sign(`${FOO_HASH}+3`, TOKEN)}`)
      t.equal(res.status, 502, `${stored.length} bytes stored: ${method} → 502`)
    }
  }
})

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..')

t.test('a child keepstore with a FIFO as a block file answers 502 and still exits on SIGTERM', { skip: hasMkfifo() ? false : 'needs the mkfifo command' }, async (t) => {
  const dir = t.testdir({ disk0: {} })
  const [port] = await freePorts(1)
  const url = `http://127.0.0.1:${port}`
  const file = path.join(dir, 'cluster.json')
  await writeFile(
    file,
    JSON.stringify({
      cluster: { id: 'zzzzz', systemRootToken: ADMIN_TOKEN, managementToken: MANAGEMENT_TOKEN, blobSigningKey: SIGNING_KEY },
      keepstores: [{ uuid: 'zzzzz-bi6l4-000000000000000', url, volumes: [{ uuid: UUID, driver: 'directory', root: 'disk0' }] }],
    }),
  )
  mkdirSync(path.dirname(blockPath(`${dir}/disk0`, FOO_HASH)))
  execFileSync('mkfifo', [blockPath(`${dir}/disk0`, FOO_HASH)])
  // Without tap's NODE_OPTIONS: its loaders are for test files, not for the program under test.
  const child = spawn(process.execPath, [path.join(repo, 'bin/keepstore'), '--config', file], { stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '' } })
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  const deadline = Date.now() + 10_000
  while ((await call(url, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN }).then((r) => r.status, () => 0)) !== 200) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('keepstore did not start')
    await new Promise((r) => setTimeout(r, 50))
  }
  const locator = signer.sign(`${FOO_HASH}+3`, TOKEN)
  // More reads than libuv has file-system threads: none of them may block one.
  const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => ask(url, i % 2 ? 'HEAD' : 'GET', `/${locator}`).then((r) => r.status, () => 0)))
  t.same(answers, [502, 502, 502, 502, 502, 502], 'every read of the FIFO → 502')
  t.equal((await call(url, 'GET', '/index', { token: ADMIN_TOKEN })).status, 200, 'the index still answers')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), LIVENESS_MS)
  t.equal(await exit, 0, 'exits cleanly on SIGTERM')
  clearTimeout(timer)
})
