import { randomBytes } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import t, { type Test } from 'tap'
import { type FsOp, createDirectoryVolume } from '../../keepstore/volumes/directory-volume.js'
import { adminJson, getBlock, getIndex, putBlock } from '../helpers/block-client.js'
import { spawnKeepstore, writeChildCluster } from '../helpers/keepstore-child.js'
import {
  type Syscall,
  fdPath,
  isRename,
  isSync,
  isWrite,
  parseStrace,
  pathArgs,
  straceUnusable,
  attachStrace,
} from '../helpers/strace.js'
import { figure } from '../helpers/soak.js'
import { auditVolume } from '../helpers/volume-audit.js'
import { chunked, collect, md5, seededRandom } from '../helpers/volume-suite.js'

const UUID = 'zzzzz-nyw5e-000000000000000'
const fault = (code: string): Error => Object.assign(new Error(`injected ${code}`), { code })

interface Step {
  op: FsOp | 'ack'
  path: string
}

/** A directory volume whose every file-system step (and every acknowledged write) lands in `steps`. */
async function recordingVolume(t: Test, root: string, fail?: (op: FsOp, path: string) => string | undefined) {
  const steps: Step[] = []
  const volume = createDirectoryVolume({
    uuid: UUID,
    root,
    faults: (op, p) => {
      steps.push({ op, path: p })
      const code = fail?.(op, p)
      if (code) throw fault(code)
    },
  })
  await volume.open()
  t.teardown(() => volume.close())
  const write = async (data: Buffer, chunkSize?: number): Promise<void> => {
    const hash = md5(data)
    await volume.write(hash, chunked(data, chunkSize))
    steps.push({ op: 'ack', path: `${root}/${hash.slice(0, 3)}/${hash}` })
  }
  return { volume, steps, write }
}

const isTemp = (p: string, hash: string): boolean => path.basename(p).startsWith(`.${hash}.tmp-`)
const hidden = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('.'))

/** Positions of one block's durability steps in `steps`, or a reason they are out of order. */
function orderOf(steps: Step[], root: string, hash: string): string | undefined {
  const dir = `${root}/${hash.slice(0, 3)}`
  const final = `${dir}/${hash}`
  const at = (pred: (s: Step) => boolean, from = 0): number => steps.findIndex((s, i) => i >= from && pred(s))
  const lastWrite = steps.findLastIndex((s) => s.op === 'write' && isTemp(s.path, hash))
  const fsyncTemp = at((s) => s.op === 'fsync' && isTemp(s.path, hash))
  const rename = at((s) => s.op === 'rename' && isTemp(s.path, hash))
  const fsyncDir = at((s) => s.op === 'fsync' && s.path === dir, rename)
  const ack = at((s) => s.op === 'ack' && s.path === final)
  if (fsyncTemp < 0) return 'no fsync of the temp file'
  if (rename < 0) return 'no rename'
  if (fsyncDir < 0) return 'no fsync of the directory after the rename'
  if (ack < 0) return 'never acknowledged'
  if (!(lastWrite < fsyncTemp && fsyncTemp < rename && rename < fsyncDir && fsyncDir < ack)) {
    return `out of order: write ${lastWrite}, fsync ${fsyncTemp}, rename ${rename}, fsync dir ${fsyncDir}, ack ${ack}`
  }
  return undefined
}

t.test('directory volume: every acknowledged write was fsynced, renamed, then its directory fsynced', async (t) => {
  const root = t.testdir()
  const { steps, write } = await recordingVolume(t, root)
  const random = seededRandom(14)
  // Distinct prefix directories, so each directory fsync belongs to one write even when writes overlap.
  const blocks = new Map<string, Buffer>()
  while (blocks.size < 100) {
    const data = randomBytes(Math.floor(random() ** 2 * 1024 * 1024))
    const prefix = md5(data).slice(0, 3)
    if (![...blocks.keys()].some((h) => h.startsWith(prefix))) blocks.set(md5(data), data)
  }
  const queue = [...blocks.values()]
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let data = queue.shift(); data; data = queue.shift()) await write(data, 1 + Math.floor(random() * 300 * 1024))
    }),
  )
  const wrong = [...blocks.keys()].map((h) => [h, orderOf(steps, root, h)]).filter(([, why]) => why !== undefined)
  t.same(wrong, [], '100 writes: fsync(temp) → rename → fsync(dir) → acknowledged')
  figure(t, 'durability-order-fs', { writes: blocks.size, in_order: blocks.size - wrong.length })
})

t.test('directory volume: a failing fsync of the file fails the write and leaves nothing visible', async (t) => {
  for (const code of ['EIO', 'ENOSPC']) {
    const root = t.testdir()
    const data = randomBytes(200_000)
    const hash = md5(data)
    const { volume, steps, write } = await recordingVolume(t, root, (op, p) => (op === 'fsync' && isTemp(p, hash) ? code : undefined))
    await t.rejects(write(data, 64 * 1024), { code: code === 'EIO' ? 'KEEP_IO' : 'KEEP_FULL' }, `${code}: the write fails`)
    t.notOk(steps.some((s) => s.op === 'rename'), `${code}: nothing was renamed into place`)
    await t.rejects(volume.stat(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, `${code}: not stored`)
    t.same(await collect(volume.index('')), [], `${code}: not indexed`)
    t.same(hidden(`${root}/${hash.slice(0, 3)}`), [], `${code}: temp removed`)
  }
})

t.test('directory volume: a failing fsync of the directory fails the write (never acknowledged)', async (t) => {
  const root = t.testdir()
  const data = randomBytes(200_000)
  const hash = md5(data)
  const dir = `${root}/${hash.slice(0, 3)}`
  const { volume, steps, write } = await recordingVolume(t, root, (op, p) => (op === 'fsync' && p === dir ? 'EIO' : undefined))
  await t.rejects(write(data), { code: 'KEEP_IO' }, 'the write fails')
  t.notOk(steps.some((s) => s.op === 'ack'), 'not acknowledged')
  t.same(hidden(dir), [], 'no temp left')
  // The rename happened before the failing fsync: the bytes may be there, but only whole.
  for (const b of await collect(volume.index(''))) t.equal(md5(readFileSync(`${dir}/${b.hash}`)), b.hash, 'whatever is visible is whole')
})

// ---- The same contract seen from outside: a keepstore process under strace ----

const skip = straceUnusable()
const PUTS = 100

interface BlockCalls {
  open: Syscall
  writes: Syscall[]
  fsyncTemp: Syscall | undefined
  rename: Syscall | undefined
  mkdir: Syscall | undefined
  fsyncDir: Syscall | undefined
  response: Syscall | undefined
}

/** The system calls that stored one block and answered its PUT (request id `put-<hash>`). */
function blockCalls(calls: Syscall[], root: string, hash: string): BlockCalls | undefined {
  const open = calls.find((c) => c.name === 'openat' && isTemp(pathArgs(c)[0] ?? '', hash))
  if (!open) return undefined
  const temp = pathArgs(open)[0]!
  const dir = path.dirname(temp)
  const rename = calls.find((c) => isRename(c) && pathArgs(c)[0] === temp)
  return {
    open,
    writes: calls.filter((c) => isWrite(c) && fdPath(c) === temp),
    fsyncTemp: calls.find((c) => isSync(c) && fdPath(c) === temp),
    rename,
    mkdir: calls.find((c) => c.name === 'mkdir' && pathArgs(c)[0] === dir && c.start < open.start),
    fsyncDir: rename && calls.find((c) => isSync(c) && fdPath(c) === dir && c.start > rename.end),
    response: calls.find((c) => isWrite(c) && fdPath(c)?.startsWith('TCP') === true && c.args.includes(`put-${hash}`)),
  }
}

function durableBeforeAnswer(b: BlockCalls | undefined, root: string, hash: string): string | undefined {
  if (!b) return 'no temp file opened'
  const { writes, fsyncTemp, rename, fsyncDir, response } = b
  if (!fsyncTemp || !rename || !fsyncDir || !response) return `missing: ${Object.entries({ fsyncTemp, rename, fsyncDir, response }).filter(([, v]) => !v).map(([k]) => k).join(', ')}`
  if (pathArgs(rename)[1] !== `${root}/${hash.slice(0, 3)}/${hash}`) return `renamed to ${pathArgs(rename)[1]}`
  if (!response.args.includes('HTTP/1.1 200')) return 'the answer is not a 200'
  const lastWrite = Math.max(-1, ...writes.map((w) => w.end))
  if (!(lastWrite < fsyncTemp.start && fsyncTemp.end < rename.start && rename.end < fsyncDir.start && fsyncDir.end < response.start)) {
    return `out of order: write ${lastWrite}, fsync ${fsyncTemp.start}-${fsyncTemp.end}, rename ${rename.start}-${rename.end}, fsync dir ${fsyncDir.start}-${fsyncDir.end}, answer ${response.start}`
  }
  return undefined
}

t.test('keepstore process under strace: every 200 to a PUT follows fsync(temp) → rename → fsync(dir)', { skip }, async (t) => {
  const dir = t.testdir()
  const cluster = await writeChildCluster(dir, { cluster: { blobSigning: false } })
  const ks = await spawnKeepstore(cluster, 0)
  t.teardown(() => ks.kill())
  const trace = path.join(dir, 'trace.txt')
  const strace = await attachStrace(ks.pid, trace, { allThreads: true })
  const url = cluster.urls[0]!
  const root = cluster.volumes[0]!.root
  const random = seededRandom(1414)
  const acked: string[] = []
  for (let i = 0; i < PUTS; i++) {
    const data = randomBytes(1 + Math.floor(random() ** 2 * 200_000))
    const res = await putBlock(url, data, { requestId: `put-${md5(data)}` })
    if (res.status === 200) acked.push(md5(data))
  }
  t.equal(acked.length, PUTS, `${PUTS} PUTs answered 200`)
  await strace.detach()
  const calls = parseStrace(trace)
  const wrong = acked.map((h) => [h, durableBeforeAnswer(blockCalls(calls, root, h), root, h)]).filter(([, why]) => why !== undefined)
  t.same(wrong, [], 'for each block: fsync(temp) → rename(temp, final) → fsync(dir) → the 200 on the socket')
  figure(t, 'durability-order-strace', { puts: PUTS, acked: acked.length, in_order: acked.length - wrong.length })
})

interface FaultCase {
  syscall: 'writev' | 'fsync' | 'rename' | 'mkdir'
  error: 'EIO' | 'ENOSPC'
  status: number
}

const CASES: FaultCase[] = [
  { syscall: 'writev', error: 'EIO', status: 500 },
  { syscall: 'writev', error: 'ENOSPC', status: 507 },
  { syscall: 'fsync', error: 'EIO', status: 500 },
  { syscall: 'fsync', error: 'ENOSPC', status: 507 },
  { syscall: 'rename', error: 'ENOSPC', status: 507 },
  { syscall: 'mkdir', error: 'ENOSPC', status: 507 },
]

/** Small bytes whose hash starts like `hash`: a block in the same directory. */
function samePrefix(hash: string): Buffer {
  for (let i = 0; ; i++) {
    const data = Buffer.from(`neighbour ${hash} ${i}`)
    if (md5(data).slice(0, 3) === hash.slice(0, 3)) return data
  }
}

t.test('keepstore process under strace: a fault injected into a block write fails that PUT cleanly', { skip }, async (t) => {
  const dir = t.testdir()
  const cluster = await writeChildCluster(dir, { cluster: { blobSigning: false } })
  // One libuv worker does every file-system call; strace, attached to the worker threads only, fails the first such call.
  const ks = await spawnKeepstore(cluster, 0, { env: { UV_THREADPOOL_SIZE: '1' } })
  t.teardown(() => ks.kill())
  const url = cluster.urls[0]!
  const root = cluster.volumes[0]!.root
  let clean = 0
  for (const c of CASES) {
    await t.test(`${c.error} on ${c.syscall} → PUT ${c.status}, nothing visible, temp removed, the next PUT stored`, async (t) => {
      // ~300 kB: the body arrives in several chunks, written with one writev.
      const x = randomBytes(300_000)
      const hx = md5(x)
      // Except for the mkdir case, the block's directory exists already, so the first fsync is the block's own.
      if (c.syscall !== 'mkdir') t.equal((await putBlock(url, samePrefix(hx))).status, 200, 'a neighbour makes the directory')
      const trace = path.join(t.testdir(), 'trace.txt')
      const strace = await attachStrace(ks.pid, trace, { extra: ['-e', `inject=${c.syscall}:error=${c.error}:when=1`] })
      let detached = false
      t.teardown(() => (detached ? undefined : strace.detach()))
      t.equal((await putBlock(url, x)).status, c.status, `PUT answers ${c.status}`)
      t.equal((await getBlock(url, hx, x.length)).status, 404, 'GET 404')
      t.notOk((await getIndex(url)).blocks.has(hx), 'not in the index')
      t.same(auditVolume(root).temps, [], 'no temp file')
      t.equal((await adminJson(url, 'GET', '/status')).status, 200, 'the process answers (and re-reads free space)')
      const y = randomBytes(10_000)
      t.equal((await putBlock(url, y)).status, 200, 'the next PUT is stored')
      t.ok((await getBlock(url, md5(y), y.length)).verified, 'and reads back')
      await strace.detach()
      detached = true
      const injected = parseStrace(trace).filter((k) => k.injected)
      const aimed = injected.filter((k) => (c.syscall === 'mkdir' ? pathArgs(k)[0] === `${root}/${hx.slice(0, 3)}` : isTemp(fdPath(k) ?? pathArgs(k)[0] ?? '', hx)))
      t.equal(aimed.length, 1, `the fault hit the block's own ${c.syscall} (injected: ${injected.map((k) => k.name).join(', ')})`)
      if (t.passing()) clean++
    })
  }
  figure(t, 'durability-faults-strace', { cases: CASES.length, clean })
})
