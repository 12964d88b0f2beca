import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { PassThrough } from 'node:stream'
import { createHash } from 'node:crypto'
import { request } from 'undici'
import { freePorts, ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY, call } from '../helpers/cluster.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const bin = path.join(repo, 'bin/keepstore')
const md5 = (b: string): string => createHash('md5').update(b).digest('hex')

function run(args: string[]): { child: ChildProcess; exit: Promise<{ code: number | null; stderr: string }> } {
  // Without tap's NODE_OPTIONS: its loaders are for test files, not for the program under test.
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d.toString()))
  child.stdout!.resume()
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('exit', (code) => resolve({ code, stderr })))
  return { child, exit }
}

async function configFile(dir: string, port: number, extra = ''): Promise<string> {
  const file = path.join(dir, 'cluster.yml')
  await mkdir(path.join(dir, 'disk0'), { recursive: true })
  await writeFile(
    file,
    `cluster:
  id: zzzzz
  systemRootToken: ${ADMIN_TOKEN}
  managementToken: ${MANAGEMENT_TOKEN}
  blobSigningKey: ${SIGNING_KEY}
keepstores:
  - uuid: zzzzz-bi6l4-000000000000000
    url: http://127.0.0.1:${port}
    volumes:
      - uuid: zzzzz-nyw5e-000000000000000
        root: disk0
${extra}`,
  )
  return file
}

async function healthy(url: string, child: ChildProcess): Promise<void> {
  for (;;) {
    if (child.exitCode !== null) throw new Error('keepstore exited')
    const ok = await call(url, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN }).then((r) => r.status === 200, () => false)
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('bin/keepstore: a bad config is one line naming the key, exit 2', async (t) => {
  const dir = t.testdir({ 'bad.yml': 'cluster:\n  id: zzzzz\n  systemRootToken: short\nkeepstores: []\n' })
  const { exit } = run(['--config', path.join(dir, 'bad.yml')])
  const { code, stderr } = await exit
  t.equal(code, 2)
  t.match(stderr, /^config: cluster\.systemRootToken: [^\n]+\n$/)
  const missing = await run(['--config', path.join(dir, 'nope.yml')]).exit
  t.equal(missing.code, 2)
  t.match(missing.stderr, /^config: [^\n]*nope\.yml[^\n]*\n$/)
})

t.test('bin/keepstore: a missing volume root is a clear start-up error, exit 2', async (t) => {
  const dir = t.testdir({})
  const [port] = await freePorts(1)
  const file = await configFile(dir, port!)
  const { rm } = await import('node:fs/promises')
  await rm(path.join(dir, 'disk0'), { recursive: true })
  const { code, stderr } = await run(['--config', file]).exit
  t.equal(code, 2)
  t.match(stderr, /disk0/)
  t.equal(stderr.trim().split('\n').length, 1, 'one line')
})

t.test('bin/keepstore: SIGTERM finishes the request in flight, then exits 0', async (t) => {
  const dir = t.testdir({})
  const [port] = await freePorts(1)
  const file = await configFile(dir, port!)
  const { child, exit } = run(['--config', file])
  const url = `http://127.0.0.1:${port}`
  await healthy(url, child)
  const data = 'in flight during shutdown'
  const body = new PassThrough()
  const put = request(`${url}/${md5(data)}`, { method: 'PUT', body, headers: { 'content-length': String(data.length) } })
  body.write(data.slice(0, 5))
  await new Promise((r) => setTimeout(r, 100))
  child.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 100))
  body.end(data.slice(5))
  const res = await put
  t.equal(res.statusCode, 200, 'the in-flight PUT completed')
  t.equal((await res.body.text()).split('+')[0], md5(data))
  const { code } = await exit
  t.equal(code, 0, 'clean exit')
  const again = run(['--config', file])
  await healthy(url, again.child)
  const index = await call(url, 'GET', '/index', { token: ADMIN_TOKEN })
  t.match(index.text, md5(data), 'the acknowledged block is there after restart')
  again.child.kill('SIGTERM')
  t.equal((await again.exit).code, 0)
})
