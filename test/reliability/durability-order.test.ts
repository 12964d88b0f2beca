// The durability contract seen from outside: a keepstore process under strace.
// Every 200 to a PUT follows fsync(temp) → rename → fsync(dir) in the system
// calls, and a fault injected into a block write fails that PUT cleanly. The
// same order through the volume's own file-system seam (fast, in process) is
// test/keepstore/volumes/durability-order.test.ts.
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import t from 'tap'
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
import { md5, seededRandom } from '../helpers/volume-suite.js'

const isTemp = (p: string, hash: string): boolean => path.basename(p).startsWith(`.${hash}.tmp-`)


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
