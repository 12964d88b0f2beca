import { execFileSync } from 'node:child_process'
import { appendFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { hostname } from 'node:os'
import t, { type Test } from 'tap'
import { createVolume } from '../../../keepstore/volumes/create-volume.js'
import { type FaultHook, createDirectoryVolume } from '../../../keepstore/volumes/directory-volume.js'
import type { Volume } from '../../../keepstore/volumes/volume.js'
import { bytes, chunked, collect, drain, md5, volumeSuite } from '../../helpers/volume-suite.js'

const UUID = 'zzzzz-nyw5e-000000000000000'

async function openVolume(t: Test, root: string, opts: { readOnly?: boolean; allowTrashWhenReadOnly?: boolean; now?: () => bigint; faults?: FaultHook; uuid?: string } = {}): Promise<Volume> {
  const volume = createDirectoryVolume({ uuid: UUID, root, ...opts })
  await volume.open()
  t.teardown(() => volume.close())
  return volume
}

/** Flips the last bit of a stored block in place (an empty block gains a byte). */
async function corruptFile(path: string): Promise<void> {
  const handle = await open(path, 'r+')
  try {
    const { size } = await handle.stat()
    if (size === 0) {
      await handle.write(Buffer.from([0]), 0, 1, 0)
      return
    }
    const last = Buffer.alloc(1)
    await handle.read(last, 0, 1, size - 1)
    last[0] = (last[0] as number) ^ 1
    await handle.write(last, 0, 1, size - 1)
  } finally {
    await handle.close()
  }
}

const blockPath = (root: string, hash: string): string => `${root}/${hash.slice(0, 3)}/${hash}`
const hidden = (dir: string): string[] => readdirSync(dir).filter((n) => n.startsWith('.'))
const fault = (code: string): Error => Object.assign(new Error(`simulated ${code}`), { code })

volumeSuite(t, 'directory volume', async (t, opts = {}) => {
  const root = t.testdir()
  const volume = await openVolume(t, root, opts)
  return { volume, corrupt: (hash) => corruptFile(blockPath(root, hash)) }
})

t.test('directory volume: a block is written to a hidden temp file and appears only when complete', async (t) => {
  const root = t.testdir()
  const volume = await openVolume(t, root)
  const data = bytes(200_000, 1)
  const hash = md5(data)
  let reached!: () => void
  const halfway = new Promise<void>((resolve) => (reached = resolve))
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  async function* body(): AsyncGenerator<Buffer> {
    yield data.subarray(0, 1000)
    reached()
    await gate
    yield data.subarray(1000)
  }
  const writing = volume.write(hash, body())
  await halfway
  const dir = `${root}/${hash.slice(0, 3)}`
  const temps = hidden(dir)
  t.equal(temps.length, 1, 'one temp file')
  t.match(temps[0], new RegExp(`^\\.${hash}\\.tmp-`), 'named after the hash, hidden')
  t.ok(statSync(`${dir}/${temps[0]}`).size <= 1000, 'holding at most the bytes so far (writes are batched)')
  await t.rejects(volume.stat(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'the block is not visible')
  t.same(await collect(volume.index('')), [], 'nor indexed')
  release()
  t.equal((await writing).outcome, 'written')
  t.same(readdirSync(dir), [hash], 'renamed into place, no temp left')
  t.ok(readFileSync(blockPath(root, hash)).equals(data))
})

t.test('directory volume: open removes temp files a crash left behind', async (t) => {
  const root = t.testdir({
    'abc': { '.abcdef.tmp-123456': 'partial', [`abc${'0'.repeat(29)}`]: 'not verified, but a block name', [`abc${'0'.repeat(29)}.trash.5`]: 'x' },
    '.keep-volume.json.tmp-42': '{',
  })
  await openVolume(t, root)
  t.same(hidden(`${root}/abc`), [], 'block directory temp removed')
  t.same(readdirSync(`${root}/abc`).sort(), [`abc${'0'.repeat(29)}`, `abc${'0'.repeat(29)}.trash.5`], 'blocks and trash stay')
  t.same(hidden(root), ['.keep-volume.json'], 'id temp removed, id file written')
})

t.test('directory volume: the id file claims the root for one uuid', async (t) => {
  const dir = t.testdir({ root: {}, garbage: { '.keep-volume.json': 'not json' } })
  const root = `${dir}/root`
  await openVolume(t, root)
  const id = JSON.parse(readFileSync(`${root}/.keep-volume.json`, 'utf8')) as { uuid: string; created: string }
  t.equal(id.uuid, UUID)
  t.ok(!Number.isNaN(Date.parse(id.created)), 'records when')
  await openVolume(t, root)
  t.pass('the same uuid opens it again')
  const other = createDirectoryVolume({ uuid: 'zzzzz-nyw5e-111111111111111', root })
  await t.rejects(other.open(), { code: 'KEEP_CONFIG' }, 'another uuid is refused')
  await t.rejects(createDirectoryVolume({ uuid: UUID, root: `${dir}/garbage` }).open(), { code: 'KEEP_CONFIG' }, 'a broken id file is refused')
})

t.test('directory volume: a read-only volume serves a populated root and creates nothing', async (t) => {
  const dir = t.testdir({ populated: {}, bare: {} })
  const root = `${dir}/populated`
  const writer = await openVolume(t, root)
  const data = bytes(5000, 2)
  await writer.write(md5(data), chunked(data))
  const bare = `${dir}/bare`
  await openVolume(t, bare, { readOnly: true })
  t.same(readdirSync(bare), [], 'no id file in an empty root')
  const reader = await openVolume(t, root, { readOnly: true })
  t.ok((await drain((await reader.read(md5(data))).stream)).data.equals(data), 'reads')
  t.equal((await collect(reader.index(''))).length, 1, 'indexes')
  await t.rejects(reader.trash(md5(data), { deadline: 0 }), { code: 'KEEP_READ_ONLY' })
  await t.rejects(reader.touch(md5(data)), { code: 'KEEP_READ_ONLY' })
})

t.test('directory volume: a full disk fails KEEP_FULL and removes the temp file', async (t) => {
  const dir = t.testdir({ ENOSPC: {}, EDQUOT: {} })
  for (const code of ['ENOSPC', 'EDQUOT']) {
    const root = `${dir}/${code}`
    let armed = false
    const volume = await openVolume(t, root, { faults: (op) => { if (armed && op === 'write') throw fault(code) } })
    armed = true
    const data = bytes(100_000, 3)
    await t.rejects(volume.write(md5(data), chunked(data)), { code: 'KEEP_FULL' }, code)
    t.same(hidden(`${root}/${md5(data).slice(0, 3)}`), [], `${code}: no temp left`)
  }
})

t.test('directory volume: EIO fails KEEP_IO wherever it happens', async (t) => {
  const data = bytes(600_000, 4)
  const hash = md5(data)
  const failures = ['write', 'fsync', 'rename', 'stat', 'open'] as const
  const dir = t.testdir(Object.fromEntries([...failures, 'read'].map((f) => [f, {}])))
  for (const failing of failures) {
    const root = `${dir}/${failing}`
    let armed = false
    const volume = await openVolume(t, root, { faults: (op) => { if (armed && op === failing) throw fault('EIO') } })
    if (failing === 'stat' || failing === 'open') await volume.write(hash, chunked(data))
    armed = true
    const call = (): Promise<unknown> =>
      failing === 'stat' || failing === 'open' ? volume.read(hash) : volume.write(hash, chunked(data))
    await t.rejects(call(), { code: 'KEEP_IO' }, `${failing} fails`)
    t.same(hidden(`${root}/${hash.slice(0, 3)}`), [], `${failing}: no temp left`)
  }
  const root = `${dir}/read`
  let reads = 0
  const volume = await openVolume(t, root, { faults: (op) => { if (op === 'read' && ++reads === 2) throw fault('EIO') } })
  const big = bytes(1_500_000, 5) // two reads: 1 MiB, then the rest
  await volume.write(md5(big), chunked(big))
  const got = await drain((await volume.read(md5(big))).stream)
  t.match(got.error, { code: 'KEEP_IO' }, 'a read failing mid-stream ends the stream with KEEP_IO')
  t.ok(got.data.length < big.length, 'short of the full body')
})

t.test('directory volume: an abandoned write removes its temp file', async (t) => {
  const root = t.testdir()
  const volume = await openVolume(t, root)
  const data = bytes(10_000, 8)
  const controller = new AbortController()
  async function* stalling(): AsyncGenerator<Buffer> {
    yield data.subarray(0, 5000)
    controller.abort()
    await new Promise<never>(() => undefined)
  }
  await t.rejects(volume.write(md5(data), stalling(), { signal: controller.signal }), { code: 'KEEP_TIMEOUT' })
  t.same(hidden(`${root}/${md5(data).slice(0, 3)}`), [])
})

t.test('directory volume: deviceId is host, device and inode of the root', async (t) => {
  const root = t.testdir({ real: {} })
  symlinkSync(`${root}/real`, `${root}/link`)
  const st = statSync(`${root}/real`, { bigint: true })
  const a = await openVolume(t, `${root}/real`)
  const b = createDirectoryVolume({ uuid: UUID, root: `${root}/link`, readOnly: true, hostname: 'keep0' })
  t.equal(a.deviceId, `${hostname()}:${st.dev}:${st.ino}`)
  t.equal(b.deviceId, `keep0:${st.dev}:${st.ino}`, 'one directory by two paths is one device')
  t.equal(a.driver, 'directory')
})

t.test('directory volume: mtimes come from the file system to the nanosecond', async (t) => {
  const root = t.testdir()
  const volume = await openVolume(t, root)
  const data = Buffer.from('nanoseconds')
  const hash = md5(data)
  await volume.write(hash, chunked(data))
  execFileSync('touch', ['-d', '@1707249451.308502673', blockPath(root, hash)])
  const mtime = 1_707_249_451_308_502_673n
  t.not(BigInt(Number(mtime)), mtime, 'the value does not survive a trip through Number')
  t.equal((await volume.stat(hash)).mtime, mtime)
  t.equal((await collect(volume.index('')))[0]?.mtime, mtime)
  t.equal(await volume.trash(hash, { ifMtime: mtime - 1n, deadline: 0 }), false)
  t.equal(await volume.trash(hash, { ifMtime: mtime, deadline: 0 }), true)
})

t.test('directory volume: trash renames to <hash>.trash.<deadline>, unique per copy', async (t) => {
  const root = t.testdir()
  const volume = await openVolume(t, root)
  const data = bytes(50, 5)
  const hash = md5(data)
  for (let i = 0; i < 2; i++) {
    await volume.write(hash, chunked(data))
    await volume.trash(hash, { deadline: 1234 })
  }
  t.same(readdirSync(`${root}/${hash.slice(0, 3)}`).sort(), [`${hash}.trash.1234`, `${hash}.trash.1234.1`])
  t.equal(await volume.emptyTrash(1234), 2)
})

t.test('directory volume: index skips hidden, trashed and foreign names', async (t) => {
  const data = bytes(10, 6)
  const hash = md5(data)
  const root = t.testdir({ 'zzz': { junk: 'x' }, 'notes.txt': 'x' })
  const volume = await openVolume(t, root)
  await volume.write(hash, chunked(data))
  const dir = `${root}/${hash.slice(0, 3)}`
  writeFileSync(`${dir}/.${hash}.tmp-abc`, 'x')
  writeFileSync(`${dir}/${hash.slice(0, 3)}${'1'.repeat(29)}.trash.9`, 'x')
  writeFileSync(`${dir}/README`, 'x')
  mkdirSync(`${dir}/${hash.slice(0, 3)}${'2'.repeat(29)}`)
  t.same((await collect(volume.index(''))).map((s) => s.hash), [hash])
})

t.test('directory volume: concurrent writes of one block leave no temp files', async (t) => {
  const root = t.testdir()
  const volume = await openVolume(t, root)
  const data = bytes(300_000, 7)
  const hash = md5(data)
  const results = await Promise.all(Array.from({ length: 10 }, () => volume.write(hash, chunked(data, 50_000))))
  t.equal(results.filter((r) => r.outcome === 'written').length >= 1, true)
  t.same(readdirSync(`${root}/${hash.slice(0, 3)}`), [hash])
})

t.test('create volume: picks the driver a config entry names', async (t) => {
  const root = t.testdir()
  t.equal(createVolume({ uuid: 'a', driver: 'memory', readOnly: false }).driver, 'memory')
  const dir = createVolume({ uuid: 'b', driver: 'directory', root, readOnly: true })
  t.match(dir, { driver: 'directory', readOnly: true, uuid: 'b' })
  t.throws(() => createVolume({ uuid: 'c', driver: 'directory', readOnly: false }), { code: 'KEEP_CONFIG' })
  const now = (): bigint => 1_700_000_000n * 1_000_000_000n
  const mem = createVolume({ uuid: 'd', driver: 'memory', readOnly: false }, { now })
  t.equal((await mem.write(md5(Buffer.from('c')), chunked(Buffer.from('c')))).mtime, now(), 'the clock is passed on')
})

t.test('directory volume: open refuses a root that is a file, missing or unreadable (KEEP_CONFIG, saying which)', async (t) => {
  const dir = t.testdir({ 'a-file': 'not a directory' })
  symlinkSync(`${dir}/loop`, `${dir}/loop`)
  const cases: Array<[string, RegExp]> = [
    [`${dir}/a-file`, /^volume zzzzz-nyw5e-000000000000000: root \S+\/a-file is not a directory$/],
    [`${dir}/missing`, /^volume zzzzz-nyw5e-000000000000000: root \S+\/missing does not exist$/],
    [`${dir}/loop`, /^volume zzzzz-nyw5e-000000000000000: root \S+\/loop cannot be read \(ELOOP\)$/],
  ]
  for (const [root, message] of cases) {
    await t.rejects(createDirectoryVolume({ uuid: UUID, root }).open(), { code: 'KEEP_CONFIG', message }, root)
  }
})

t.test('directory volume: stale temp files are removed on open, but never by a read-only volume', async (t) => {
  const hash = md5(bytes(10, 3))
  const stale = `.${hash}.tmp-0123456789ab`
  const ro = t.testdir({ [hash.slice(0, 3)]: { [stale]: 'half a block' } })
  await openVolume(t, ro, { readOnly: true })
  t.same(hidden(`${ro}/${hash.slice(0, 3)}`), [stale], 'read-only: left alone')
  const rw = t.testdir({ [hash.slice(0, 3)]: { [stale]: 'half a block' } })
  await openVolume(t, rw)
  t.same(hidden(`${rw}/${hash.slice(0, 3)}`), [], 'writable: removed')
})

t.test('directory volume: status is the file system\'s free and total bytes', async (t) => {
  const root = t.testdir()
  const volume = await openVolume(t, root)
  const s = await volume.status()
  const { statfsSync } = await import('node:fs')
  const fsNow = statfsSync(root)
  const slack = 1024 ** 3 // the disk is shared: others write meanwhile
  t.ok(Math.abs(s.totalBytes - fsNow.blocks * fsNow.bsize) < slack, 'total bytes = blocks × block size')
  t.ok(Math.abs(s.freeBytes - fsNow.bavail * fsNow.bsize) < slack, 'free bytes = available blocks × block size')
})

t.test('directory volume: deviceId of a root that does not exist yet names it as unknown, without throwing', async (t) => {
  const dir = t.testdir()
  const volume = createDirectoryVolume({ uuid: UUID, root: `${dir}/not-yet`, hostname: 'keep0' })
  t.equal(volume.deviceId, `keep0:unknown:${dir}/not-yet`)
})

t.test('directory volume: a write with something other than a block hash is refused before touching the disk', async (t) => {
  const root = t.testdir()
  const volume = await openVolume(t, root)
  for (const bad of ['../../etc/passwd', 'ABCDEF0123456789ABCDEF0123456789', `${md5(bytes(1, 1))}x`]) {
    await t.rejects(volume.write(bad, chunked(bytes(1, 1))), { code: 'KEEP_INVALID_LOCATOR' }, JSON.stringify(bad))
  }
  t.same(readdirSync(root).filter((n) => !n.startsWith('.')), [], 'no directory was made')
})

t.test('directory volume: a block directory removed behind its back is made again on the next write', async (t) => {
  const root = t.testdir()
  const volume = await openVolume(t, root)
  const first = bytes(100, 21)
  const hash = md5(first)
  await volume.write(hash, chunked(first))
  const { rmSync } = await import('node:fs')
  rmSync(`${root}/${hash.slice(0, 3)}`, { recursive: true })
  // Another block with the same three-digit prefix: the volume believes the directory exists.
  let other = bytes(100, 22)
  for (let seed = 23; md5(other).slice(0, 3) !== hash.slice(0, 3); seed++) other = bytes(100 + (seed % 7), seed)
  await volume.write(md5(other), chunked(other))
  t.ok((await drain((await volume.read(md5(other))).stream)).data.equals(other), 'written and readable')
})

t.test('directory volume: writes, reads and a read whose stat fails leave no file descriptor open', { skip: process.platform === 'linux' ? false : 'needs /proc/self/fd (Linux) to count open descriptors' }, async (t) => {
  const root = t.testdir()
  let failStat = false
  const volume = await openVolume(t, root, { faults: (op) => { if (failStat && op === 'stat') throw fault('EIO') } })
  const fds = (): number => readdirSync('/proc/self/fd').length
  const blocks = Array.from({ length: 20 }, (_, i) => bytes(500 + i, 40 + i))
  const before = fds()
  for (const b of blocks) await volume.write(md5(b), chunked(b))
  for (const b of blocks) await drain((await volume.read(md5(b))).stream)
  failStat = true
  for (const b of blocks) await t.rejects(volume.read(md5(b)), { code: 'KEEP_IO' })
  t.ok(fds() <= before + 2, `descriptors: ${before} before, ${fds()} after 60 operations`)
})

t.test('directory volume: a read destroyed while its next chunk is being read closes the file only after that read', async (t) => {
  const root = t.testdir()
  let hold: Promise<void> | undefined
  let release: () => void = () => undefined
  let reached: () => void = () => undefined
  const blocked = new Promise<void>((r) => (reached = r))
  const volume = await openVolume(t, root, { faults: (op) => (op === 'read' && hold ? (reached(), hold) : undefined) })
  const data = bytes(3 * 1024 * 1024, 61)
  await volume.write(md5(data), chunked(data))
  const { stream } = await volume.read(md5(data))
  stream.on('error', () => undefined)
  hold = new Promise<void>((r) => (release = r))
  stream.resume()
  await blocked
  let closed = false
  stream.once('close', () => (closed = true))
  stream.destroy()
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
  t.notOk(closed, 'not closed while a read of its descriptor is under way')
  const closing = closed ? Promise.resolve() : new Promise((r) => stream.once('close', r))
  release()
  await closing
  t.pass('closed once the read was done')
})

t.test('directory volume: a block file that grows after it was opened is never served whole (KEEP_CORRUPT)', async (t) => {
  const root = t.testdir()
  const volume = await openVolume(t, root)
  // The empty block, one short read, and a size a whole number of 1 MiB reads fill exactly.
  for (const size of [0, 4096, 1024 * 1024]) {
    const data = bytes(size, 90)
    await volume.write(md5(data), chunked(data))
    const { stream } = await volume.read(md5(data))
    appendFileSync(blockPath(root, md5(data)), 'x')
    const got = await drain(stream)
    t.match(got.error, { code: 'KEEP_CORRUPT' }, `${size} bytes, then one more: KEEP_CORRUPT`)
    t.ok(got.data.length < Math.max(size, 1), `${size} bytes: never the whole body`)
  }
})

const S = 1_000_000_000n

t.test('directory volume: untrash picks the latest deadline, then the newest mtime, whatever order the copies were made in', async (t) => {
  let now = 1_700_000_000n * S
  const root = t.testdir()
  const volume = await openVolume(t, root, { now: () => now })
  const data = bytes(300, 31)
  const hash = md5(data)
  // Newest deadline first, then older ones: the pick cannot be "the last made".
  const made: Array<[bigint, number]> = [[now + 3n * S, 900], [now + 1n * S, 500], [now + 2n * S, 900], [now + 4n * S, 100]]
  for (const [mtime, deadline] of made) {
    now = mtime
    await volume.write(hash, chunked(data))
    t.equal(await volume.trash(hash, { deadline }), true)
  }
  t.equal((await volume.untrash(hash)).mtime, 1_700_000_000n * S + 3n * S, 'deadline 900 beats 500 and 100; of the two at 900 the newer mtime')
})

t.test('directory volume: untrash among copies with one deadline picks the newest mtime, and of equal mtimes the last made', async (t) => {
  let now = 1_700_000_000n * S
  const root = t.testdir()
  const volume = await openVolume(t, root, { now: () => now })
  const data = bytes(300, 32)
  const hash = md5(data)
  const dir = `${root}/${hash.slice(0, 3)}`
  // Six copies, one deadline, mtimes out of order: whatever order readdir gives, only the newest may win.
  for (const s of [5n, 2n, 9n, 1n, 7n, 3n]) {
    now = 1_700_000_000n * S + s * S
    await volume.write(hash, chunked(data))
    await volume.trash(hash, { deadline: 900 })
  }
  t.equal((await volume.untrash(hash)).mtime, 1_700_000_000n * S + 9n * S, 'the newest of six')
  t.notOk(readdirSync(dir).includes(`${hash}.trash.900.2`), 'the copy made third (mtime +9 s) is the one restored')
  // Equal deadline and mtime: the copy made last (the highest .n) is restored.
  const tied = bytes(301, 33)
  const h2 = md5(tied)
  now = 1_800_000_000n * S
  for (let i = 0; i < 12; i++) {
    await volume.write(h2, chunked(tied))
    await volume.trash(h2, { deadline: 950 })
  }
  await volume.untrash(h2)
  const left = readdirSync(`${root}/${h2.slice(0, 3)}`).filter((n) => n.startsWith(`${h2}.trash.`))
  t.equal(left.length, 11)
  t.notOk(left.includes(`${h2}.trash.950.11`), 'copy .11, the last made, came back; the others stay')
})

t.test('directory volume: emptyTrash counts only what it removed (a copy already gone is not counted)', async (t) => {
  const root = t.testdir()
  const data = bytes(400, 34)
  const hash = md5(data)
  let vanish = false
  const volume = await openVolume(t, root, {
    faults: (op, p) => {
      // Someone else removes the copy between the listing and the unlink.
      if (vanish && op === 'unlink') rmSync(p, { force: true })
    },
  })
  await volume.write(hash, chunked(data))
  await volume.trash(hash, { deadline: 1000 })
  vanish = true
  t.equal(await volume.emptyTrash(2000), 0, 'nothing counted')
  t.same(readdirSync(`${root}/${hash.slice(0, 3)}`), [], 'and nothing is left')
})

t.test('directory volume: a prefix directory that already exists is not synced into the root again', async (t) => {
  const root = t.testdir()
  const data = bytes(500, 35)
  const hash = md5(data)
  const first = await openVolume(t, root)
  await first.write(md5(bytes(10, 1)), chunked(bytes(10, 1)))
  mkdirSync(`${root}/${hash.slice(0, 3)}`, { recursive: true })
  const synced: string[] = []
  // A new volume instance knows no directories: its mkdir finds EEXIST.
  const second = await openVolume(t, root, { faults: (op, p) => void (op === 'fsync' ? synced.push(p) : undefined) })
  synced.length = 0
  await second.write(hash, chunked(data))
  t.notOk(synced.includes(root), `the root was not fsynced (fsynced: ${synced.map((p) => p.slice(root.length) || '/').join(', ')})`)
})

t.test('directory volume: a quarantined copy is named by the seconds of the clock, or of the real time without one', async (t) => {
  const data = bytes(600, 36)
  const hash = md5(data)
  for (const clock of [true, false]) {
    const root = t.testdir()
    const volume = await openVolume(t, root, clock ? { now: () => 1_650_000_000_700_000_000n } : {})
    await volume.write(hash, chunked(data))
    writeFileSync(blockPath(root, hash), 'rotten')
    const before = Math.floor(Date.now() / 1000)
    t.equal(await volume.quarantine!(hash), 'quarantined')
    const after = Math.floor(Date.now() / 1000)
    const name = readdirSync(`${root}/${hash.slice(0, 3)}`).find((n) => n.includes('.quarantine.'))
    const seconds = Number(/\.quarantine\.(\d+)$/.exec(name ?? '')?.[1])
    if (clock) t.equal(seconds, 1_650_000_000, 'the injected clock, whole seconds')
    else t.ok(seconds >= before && seconds <= after, `real time: ${seconds} within ${before}…${after}`)
  }
})

t.test('directory volume: touch without an injected clock sets mtime to the real now; a clock\'s fraction of a second is kept', async (t) => {
  const root = t.testdir()
  const plain = await openVolume(t, root)
  const data = bytes(30, 32)
  const hash = md5(data)
  await plain.write(hash, chunked(data))
  const before = BigInt(Date.now()) * 1_000_000n
  const touched = await plain.touch(hash)
  const hour = 3600n * S
  t.ok(touched.mtime > before - hour && touched.mtime < before + hour, 'within an hour of now')
  const half = 1_700_000_000n * S + S / 2n
  const clocked = await openVolume(t, t.testdir(), { now: () => half })
  const w = await clocked.write(hash, chunked(data))
  const ms = 1_000_000n
  t.ok(w.mtime > half - ms && w.mtime < half + ms, `mtime ${w.mtime} keeps the half second of ${half} (to the file system's precision)`)
})

t.test('directory volume: a read-only volume never empties trash', async (t) => {
  const root = t.testdir()
  const data = bytes(50, 33)
  const hash = md5(data)
  const writable = await openVolume(t, root)
  await writable.write(hash, chunked(data))
  await writable.trash(hash, { deadline: 100 })
  const ro = await openVolume(t, root, { readOnly: true, uuid: UUID })
  t.equal(await ro.emptyTrash(1_000_000), 0)
  t.equal(readdirSync(`${root}/${hash.slice(0, 3)}`).filter((n) => n.includes('.trash.')).length, 1, 'the trashed copy is still there')
})

t.test('directory volume: a block file that grows while it is read fails the read (KEEP_CORRUPT), never more bytes than its size', async (t) => {
  const root = t.testdir()
  const volume = await openVolume(t, root)
  for (const size of [10, 3 * 1024 * 1024]) {
    const data = bytes(size, 77)
    const hash = md5(data)
    await volume.write(hash, chunked(data))
    const r = await volume.read(hash)
    t.equal(r.size, size)
    writeFileSync(blockPath(root, hash), Buffer.concat([data, Buffer.from('appended behind its back')]))
    const got = await drain(r.stream)
    t.match(got.error, { code: 'KEEP_CORRUPT' }, `${size} B: the read fails`)
    t.ok(got.data.length <= size, `${size} B: ${got.data.length} bytes delivered, never past the size`)
  }
})
