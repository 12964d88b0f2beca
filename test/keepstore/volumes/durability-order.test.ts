// Durability of the directory volume, seen through its file-system seam: every
// (operation, path) the volume performs is recorded, and each change a caller
// is told about must have reached the disk first: fsync(temp) → rename →
// fsync(dir) → acknowledgement for a write, rename → fsync(dir) for trash,
// untrash and quarantine, mkdir → fsync(root) for a new prefix directory.
// A failing step fails the operation (never a success over an unsynced change).
// The keepstore process under strace is in test/reliability/durability-order.test.ts.
import { randomBytes } from 'node:crypto'
import { lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { type FsOp, createDirectoryVolume } from '../../../keepstore/volumes/directory-volume.js'
import { figure } from '../../helpers/soak.js'
import { chunked, collect, drain, md5, seededRandom } from '../../helpers/volume-suite.js'

const UUID = 'zzzzz-nyw5e-000000000000000'
const fault = (code: string): Error => Object.assign(new Error(`injected ${code}`), { code })

interface Step {
  op: FsOp | 'ack'
  path: string
}

/** A directory volume whose every file-system step (and every acknowledged change) lands in `steps`. */
async function recordingVolume(t: Test, root: string, fail?: (op: FsOp, path: string) => string | undefined) {
  const steps: Step[] = []
  const volume = createDirectoryVolume({
    uuid: UUID,
    root,
    now: () => 1_700_000_000_000_000_000n,
    faults: (op, p) => {
      steps.push({ op, path: p })
      const code = fail?.(op, p)
      if (code) throw fault(code)
    },
  })
  await volume.open()
  t.teardown(() => volume.close())
  const ack = (p: string): void => void steps.push({ op: 'ack', path: p })
  const write = async (data: Buffer, chunkSize?: number): Promise<void> => {
    const hash = md5(data)
    await volume.write(hash, chunked(data, chunkSize))
    ack(`${root}/${hash.slice(0, 3)}/${hash}`)
  }
  return { volume, steps, write, ack }
}

const isTemp = (p: string, hash: string): boolean => path.basename(p).startsWith(`.${hash}.tmp-`)
const hidden = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('.'))
const indexOf = (steps: Step[], pred: (s: Step) => boolean, from = 0): number => steps.findIndex((s, i) => i >= from && pred(s))

/** Positions of one block's durability steps in `steps`, or a reason they are out of order. */
function orderOf(steps: Step[], root: string, hash: string): string | undefined {
  const dir = `${root}/${hash.slice(0, 3)}`
  const final = `${dir}/${hash}`
  const lastWrite = steps.findLastIndex((s) => s.op === 'write' && isTemp(s.path, hash))
  const fsyncTemp = indexOf(steps, (s) => s.op === 'fsync' && isTemp(s.path, hash))
  const rename = indexOf(steps, (s) => s.op === 'rename' && isTemp(s.path, hash))
  const fsyncDir = indexOf(steps, (s) => s.op === 'fsync' && s.path === dir, rename)
  const ack = indexOf(steps, (s) => s.op === 'ack' && s.path === final)
  if (fsyncTemp < 0) return 'no fsync of the temp file'
  if (rename < 0) return 'no rename'
  if (fsyncDir < 0) return 'no fsync of the directory after the rename'
  if (ack < 0) return 'never acknowledged'
  if (!(lastWrite < fsyncTemp && fsyncTemp < rename && rename < fsyncDir && fsyncDir < ack)) {
    return `out of order: write ${lastWrite}, fsync ${fsyncTemp}, rename ${rename}, fsync dir ${fsyncDir}, ack ${ack}`
  }
  return undefined
}

/** A rename of `from` (a predicate on the source path), then an fsync of `dir`, both before the ack of `acked`. */
function renameSyncedBeforeAck(steps: Step[], from: (p: string) => boolean, dir: string, acked: string): string | undefined {
  const rename = indexOf(steps, (s) => s.op === 'rename' && from(s.path))
  const fsyncDir = indexOf(steps, (s) => s.op === 'fsync' && s.path === dir, rename + 1)
  const ack = indexOf(steps, (s) => s.op === 'ack' && s.path === acked)
  if (rename < 0) return 'no rename'
  if (fsyncDir < 0) return 'no fsync of the directory after the rename'
  if (ack < 0) return 'never acknowledged'
  if (!(rename < fsyncDir && fsyncDir < ack)) return `out of order: rename ${rename}, fsync dir ${fsyncDir}, ack ${ack}`
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

t.test('directory volume: a new prefix directory is made durable in the root before the first write in it is acknowledged', async (t) => {
  const root = t.testdir()
  const { steps, write } = await recordingVolume(t, root)
  const data = randomBytes(1000)
  const hash = md5(data)
  const dir = `${root}/${hash.slice(0, 3)}`
  await write(data)
  const mkdir = indexOf(steps, (s) => s.op === 'mkdir' && s.path === dir)
  const fsyncRoot = indexOf(steps, (s) => s.op === 'fsync' && s.path === root, mkdir + 1)
  const ack = indexOf(steps, (s) => s.op === 'ack')
  t.ok(mkdir >= 0 && fsyncRoot > mkdir && fsyncRoot < ack, `mkdir ${mkdir} → fsync(root) ${fsyncRoot} → ack ${ack}`)
  // A second block in the same directory needs no second mkdir or root fsync.
  const before = steps.length
  const other = Buffer.concat([data, Buffer.from('x')])
  let sibling = other
  for (let i = 0; md5(sibling).slice(0, 3) !== hash.slice(0, 3); i++) sibling = Buffer.from(`${i}`)
  await write(sibling)
  t.notOk(steps.slice(before).some((s) => s.op === 'mkdir' || (s.op === 'fsync' && s.path === root)), 'a known directory is neither made nor synced again')
})

t.test('directory volume: a failing fsync of the root after a new prefix directory fails the write', async (t) => {
  const root = t.testdir()
  let armed = false // open() syncs the root too, when it writes the volume's id file
  const { volume, steps, write } = await recordingVolume(t, root, (op, p) => (armed && op === 'fsync' && p === root ? 'EIO' : undefined))
  armed = true
  const data = randomBytes(1000)
  await t.rejects(write(data), { code: 'KEEP_IO' }, 'the write fails')
  t.notOk(steps.some((s) => s.op === 'open' && isTemp(s.path, md5(data))), 'no temp file was opened in an unsynced directory')
  t.same(await collect(volume.index('')), [], 'nothing stored')
})

t.test('directory volume: a mkdir that fails for another reason than EEXIST fails the write at once', async (t) => {
  const root = t.testdir()
  const { volume, steps } = await recordingVolume(t, root)
  const data = randomBytes(1000)
  const hash = md5(data)
  // A file where the prefix directory should be: mkdir says EEXIST, the temp open ENOTDIR.
  writeFileSync(`${root}/${hash.slice(0, 3)}`, 'not a directory')
  await t.rejects(volume.write(hash, chunked(data)), { code: 'KEEP_IO' }, 'a file in the way fails the write')
  // The root itself gone: mkdir fails ENOENT, and nothing is attempted after it.
  rmSync(root, { recursive: true })
  const other = randomBytes(1000)
  const before = steps.length
  await t.rejects(volume.write(md5(other), chunked(other)), { code: 'KEEP_IO' }, 'a missing root fails the write (KEEP_IO, not "not found")')
  t.same(steps.slice(before).map((s) => s.op), ['mkdir'], 'only the mkdir ran: no temp open, no retry')
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

t.test('directory volume: trash, untrash and quarantine are renames made durable by an fsync of the directory before they return', async (t) => {
  const root = t.testdir()
  const { volume, steps, write, ack } = await recordingVolume(t, root)
  const data = randomBytes(5000)
  const hash = md5(data)
  const dir = `${root}/${hash.slice(0, 3)}`
  const final = `${dir}/${hash}`
  await write(data)

  let from = steps.length
  t.equal(await volume.trash(hash, { deadline: 1_800_000_000 }), true, 'trashed')
  ack(`trash ${hash}`)
  t.equal(renameSyncedBeforeAck(steps.slice(from), (p) => p === final, dir, `trash ${hash}`), undefined, 'trash: rename → fsync(dir) → return')

  from = steps.length
  await volume.untrash(hash)
  ack(`untrash ${hash}`)
  t.equal(renameSyncedBeforeAck(steps.slice(from), (p) => path.basename(p).startsWith(`${hash}.trash.`), dir, `untrash ${hash}`), undefined, 'untrash: rename → fsync(dir) → return')

  writeFileSync(final, 'rotten bytes') // bit rot behind the volume's back
  from = steps.length
  t.equal(await volume.quarantine!(hash), 'quarantined')
  ack(`quarantine ${hash}`)
  t.equal(renameSyncedBeforeAck(steps.slice(from), (p) => p === final, dir, `quarantine ${hash}`), undefined, 'quarantine: rename → fsync(dir) → return')
})

t.test('directory volume: a failing fsync of the directory fails trash, untrash and quarantine', async (t) => {
  for (const op of ['trash', 'untrash', 'quarantine'] as const) {
    const root = t.testdir()
    let armed = false
    const { volume, write } = await recordingVolume(t, root, (o, p) => (armed && o === 'fsync' && !isTemp(p, '') && p !== root ? 'EIO' : undefined))
    const data = randomBytes(3000)
    const hash = md5(data)
    await write(data)
    if (op === 'untrash') await volume.trash(hash, { deadline: 1_800_000_000 })
    if (op === 'quarantine') writeFileSync(`${root}/${hash.slice(0, 3)}/${hash}`, 'rotten')
    armed = true
    const run: Promise<unknown> =
      op === 'trash' ? volume.trash(hash, { deadline: 1_800_000_000 }) : op === 'untrash' ? volume.untrash(hash) : volume.quarantine!(hash)
    await t.rejects(run, { code: 'KEEP_IO' }, `${op}: an unsynced rename is reported as a failure`)
  }
})

t.test('directory volume: the probe write is fsynced and removed, and a failing fsync fails the probe', async (t) => {
  const root = t.testdir()
  // The test directory's own name says "probe": look at the file name only.
  const isProbe = (p: string): boolean => path.basename(p).startsWith('.probe.tmp-')
  let failing = false
  const { volume, steps } = await recordingVolume(t, root, (op, p) => (failing && op === 'fsync' && isProbe(p) ? 'EIO' : undefined))
  await volume.probe!()
  const written = indexOf(steps, (s) => s.op === 'write' && isProbe(s.path))
  const synced = indexOf(steps, (s) => s.op === 'fsync' && isProbe(s.path), written + 1)
  t.ok(written >= 0 && synced > written, `probe: write ${written} → fsync ${synced}`)
  failing = true
  await t.rejects(volume.probe!(), { code: 'KEEP_IO' }, 'a disk that cannot fsync fails the probe')
  t.same(hidden(root).filter((n) => n.startsWith('.probe.')), [], 'no probe file left either way')
})

t.test('directory volume: a read-only volume refuses the probe and writes nothing', async (t) => {
  const root = t.testdir()
  await (await recordingVolume(t, root)).volume.close() // claims the root
  const steps: FsOp[] = []
  const readOnly = createDirectoryVolume({ uuid: UUID, root, readOnly: true, faults: (op) => void steps.push(op) })
  await readOnly.open()
  const before = steps.length
  await t.rejects(readOnly.probe!(), { code: 'KEEP_READ_ONLY' })
  t.same(steps.slice(before), [], 'not one file-system step')
})

t.test('directory volume: a failing stat of a trashed copy fails untrash instead of reporting the block missing', async (t) => {
  const root = t.testdir()
  let failing = false
  const { volume, write } = await recordingVolume(t, root, (op, p) => (failing && op === 'stat' && path.basename(p).includes('.trash.') ? 'EIO' : undefined))
  const data = randomBytes(3000)
  const hash = md5(data)
  await write(data)
  await volume.trash(hash, { deadline: 1_800_000_000 })
  failing = true
  await t.rejects(volume.untrash(hash), { code: 'KEEP_IO' }, 'EIO on the trashed copy is an I/O error')
  failing = false
  t.equal((await volume.untrash(hash)).hash, hash, 'and the copy is still there to untrash')
})

t.test('directory volume: a failing unlink fails emptyTrash; nothing is counted as deleted that is not', async (t) => {
  const root = t.testdir()
  let failing = false
  const { volume, write } = await recordingVolume(t, root, (op) => (failing && op === 'unlink' ? 'EIO' : undefined))
  const data = randomBytes(3000)
  const hash = md5(data)
  await write(data)
  await volume.trash(hash, { deadline: 1_000 })
  failing = true
  await t.rejects(volume.emptyTrash(2_000), { code: 'KEEP_IO' }, 'EIO surfaces')
  failing = false
  t.equal(await volume.emptyTrash(2_000), 1, 'the copy was still there, and goes now')
  t.equal(await volume.emptyTrash(2_000), 0, 'and only once')
})

t.test('directory volume: untrash never moves a non-regular trash entry into place', async (t) => {
  const root = t.testdir()
  const { volume, write } = await recordingVolume(t, root)
  const data = randomBytes(3000)
  const hash = md5(data)
  const dir = `${root}/${hash.slice(0, 3)}`
  await write(data)
  await volume.trash(hash, { deadline: 1_700_000_000 })
  // Newer-looking entries that are not files: a symlink to the outside and a directory.
  writeFileSync(`${root}/outside`, 'not this block')
  symlinkSync(`${root}/outside`, `${dir}/${hash}.trash.1900000000`)
  mkdirSync(`${dir}/${hash}.trash.1900000001`)
  const st = await volume.untrash(hash)
  t.equal(st.size, data.length, 'the regular trashed copy came back')
  t.ok(lstatSync(`${dir}/${hash}`).isFile(), 'a regular file is in place')
  t.equal(md5(readFileSync(`${dir}/${hash}`)), hash, 'with the block\'s bytes')
})

t.test('directory volume: untrash fails when the live copy cannot be checked, and moves nothing', async (t) => {
  const root = t.testdir()
  let failLive = ''
  const { volume, write } = await recordingVolume(t, root, (op, p) => (op === 'stat' && p === failLive ? 'EIO' : undefined))
  const data = randomBytes(3000)
  const hash = md5(data)
  const dir = `${root}/${hash.slice(0, 3)}`
  await write(data)
  await volume.trash(hash, { deadline: 1_700_000_000 })
  failLive = `${dir}/${hash}`
  await t.rejects(volume.untrash(hash), { code: 'KEEP_IO' }, 'EIO on the live path is an I/O error, not "no live copy"')
  t.same(readdirSync(dir).filter((n) => n.startsWith(hash)), [`${hash}.trash.1700000000`], 'the trashed copy stayed where it was')
})

t.test('directory volume: every file it opens is closed (writes, reads, failed reads, probes, trash, untrash, compare)', { skip: process.platform === 'linux' ? false : 'needs /proc/self/fd (Linux) to see open descriptors' }, async (t) => {
  // Block files are raw descriptors, which no garbage collector closes: the set of open
  // descriptors after the operations must be the set before, number for number.
  const root = t.testdir()
  let failStat = false
  const { volume, steps, write } = await recordingVolume(t, root, (op, p) =>
    failStat && op === 'stat' && !path.basename(p).includes('.') ? 'EIO' : undefined,
  )
  const openFds = (): string[] => readdirSync('/proc/self/fd').sort()
  const blocks = Array.from({ length: 10 }, (_, i) => randomBytes(1000 + i))
  const before = openFds()
  for (const b of blocks) await write(b)
  for (const b of blocks) await write(b) // identical bytes again: compared, then touched
  for (const b of blocks) t.ok((await drain((await volume.read(md5(b))).stream)).data.equals(b))
  await volume.probe!()
  await volume.trash(md5(blocks[0]!), { deadline: 1_700_000_000 })
  await volume.untrash(md5(blocks[0]!))
  failStat = true
  for (const b of blocks) await t.rejects(volume.read(md5(b)), { code: 'KEEP_IO' })
  const opened = steps.filter((s) => s.op === 'open').length
  t.ok(opened > 50, `${opened} files opened`)
  t.same(openFds(), before, 'every one closed again')
})

t.test('directory volume: a short write (the file-size limit reached) fails the write; no partial block is ever acknowledged', { skip: process.platform === 'linux' ? false : 'needs bash ulimit -f and Linux EFBIG semantics' }, async (t) => {
  // Under `ulimit -f 2` (2 KiB) with SIGXFSZ ignored, a 3000-byte write is cut at 2048 bytes: writev
  // reports a short count, and only finishing the rest (which fails EFBIG) tells the write apart from a
  // whole one. A volume that took the short count as done would fsync and rename a truncated block.
  const root = t.testdir()
  const child = fileURLToPath(new URL('../../helpers/short-write-child.js', import.meta.url))
  const run = spawnSync('bash', ['-c', 'ulimit -f 2; trap "" XFSZ; exec "$0" "$@"', process.execPath, child, root, '3000'], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  })
  t.equal(run.status, 0, `the child ran: ${run.stderr}`)
  t.same(JSON.parse(run.stdout), { outcome: 'KEEP_IO', stored: false, indexed: 0, hidden: [] }, 'the write failed, nothing stored or left behind')
})
