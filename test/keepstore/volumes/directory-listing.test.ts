import { mkdirSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { createDirectoryVolume } from '../../../keepstore/volumes/directory-volume.js'
import type { BlockStat, Volume } from '../../../keepstore/volumes/volume.js'
import { ADMIN_TOKEN, call } from '../../helpers/cluster.js'
import { FAULT_VOLUME_UUID, fault, serveWithFaults } from '../../helpers/fault-app.js'
import { bytes, chunked, collect, md5 } from '../../helpers/volume-suite.js'

// The directory driver's index cache (keepstore/volumes/directory-listing.ts):
// every listing re-reads each directory; a cached stat is reused only for a
// name present now, in a directory unchanged since and settled (≥ 2 s old)
// then, and never past indexRescanInterval.

const UUID = 'zzzzz-nyw5e-000000000000000'
const RESCAN_MS = 60_000
const NAMES = ['0', '1', '2'].map((d) => `abc${d.repeat(29)}`)

interface Fixture {
  volume: Volume
  root: string
  dir: string
  clock: { ms: number }
  /** When the block directory's mtime and ctime were last set, ms (what the 2 s rule measures from). */
  settled(): number
}

async function fixture(t: Test, options: { now?: () => bigint } = {}): Promise<Fixture> {
  const root = t.testdir()
  const dir = `${root}/abc`
  const clock = { ms: 0 }
  const volume = createDirectoryVolume({ uuid: UUID, root, listingClock: () => clock.ms, indexRescanIntervalMs: RESCAN_MS, ...options })
  await volume.open()
  t.teardown(() => volume.close())
  const settled = (): number => {
    const st = statSync(dir, { bigint: true })
    const newest = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs
    return Number((newest + 999_999n) / 1_000_000n)
  }
  return { volume, root, dir, clock, settled }
}

/** Plants three block files in `abc/` behind the volume's back (the index does not read contents). */
function plant(f: Fixture): void {
  mkdirSync(f.dir)
  for (const name of NAMES) writeFileSync(`${f.dir}/${name}`, name)
  // Never blocks: uppercase hex, another prefix's hash (reads look in abd/), a trashed copy.
  for (const name of [`abc${'D'.repeat(29)}`, `abd${'0'.repeat(29)}`, `${NAMES[0]}.trash.5`]) writeFileSync(`${f.dir}/${name}`, 'x')
  f.clock.ms = f.settled() + 10_000
}

const listed = async (v: Volume, prefix = ''): Promise<Array<[string, bigint]>> => (await collect(v.index(prefix))).map((e) => [e.hash, e.mtime])
const mtimeOf = (path: string): bigint => statSync(path, { bigint: true }).mtimeNs
const digestOf = async (v: Volume, prefix: string): Promise<string | undefined> => (await v.digests()).find((d) => d.prefix === prefix)?.sha256
/** Sets a file's mtime to `s` seconds since the epoch (whole seconds: exact everywhere). */
const setMtime = (path: string, s: number): void => utimesSync(path, s, s)

t.test('index cache: a file deleted behind its back is never listed, even with a warm cache and the directory mtime put back', async (t) => {
  const f = await fixture(t)
  plant(f)
  const warm = await listed(f.volume)
  t.same(warm.map(([h]) => h), NAMES, 'only the three block names are listed')
  t.same(await listed(f.volume), warm, 'warm: listed twice alike')
  const before = statSync(f.dir)
  unlinkSync(`${f.dir}/${NAMES[1]}`)
  utimesSync(f.dir, before.atime, before.mtime)
  t.same((await listed(f.volume)).map(([h]) => h), [NAMES[0], NAMES[2]], 'the index lists only what is there')
  t.same((await listed(f.volume, 'abc')).map(([h]) => h), [NAMES[0], NAMES[2]], 'so does the prefix listing')
  t.equal((await f.volume.digests()).find((d) => d.prefix === 'abc')?.blocks, 2, 'and the digests count two')
})

t.test('index cache: a stat changed behind its back is reused until indexRescanInterval, then taken again', async (t) => {
  const f = await fixture(t)
  plant(f)
  const first = await listed(f.volume)
  const digest = await digestOf(f.volume, 'abc')
  setMtime(`${f.dir}/${NAMES[0]}`, 1_600_000_000)
  f.clock.ms += RESCAN_MS - 1
  t.same(await listed(f.volume), first, 'within the interval the cached stat is served (the cache is in use)')
  t.equal(await digestOf(f.volume, 'abc'), digest, 'and the digest with it')
  f.clock.ms += 1
  const after = await listed(f.volume)
  t.same(after[0], [NAMES[0], 1_600_000_000n * 1_000_000_000n], 'at the interval the file is stat-ed again')
  t.not(await digestOf(f.volume, 'abc'), digest, 'and the digest follows')
})

t.test('index cache: a directory changed less than 2 s before it was listed is stat-ed again next time', async (t) => {
  const f = await fixture(t)
  plant(f)
  const file = `${f.dir}/${NAMES[0]}`
  f.clock.ms = f.settled() + 1999
  await listed(f.volume)
  setMtime(file, 1_600_000_000)
  t.same((await listed(f.volume))[0], [NAMES[0], mtimeOf(file)], '1.999 s: not reused, the new mtime shows at once')
  f.clock.ms = f.settled() + 2000
  await listed(f.volume)
  setMtime(file, 1_500_000_000)
  t.same((await listed(f.volume))[0], [NAMES[0], 1_600_000_000n * 1_000_000_000n], '2 s: settled, the stat is reused')
})

t.test("index cache: the volume's own touch, write, trash and untrash show at once with a warm cache", async (t) => {
  let nowNs = 1_700_000_000n * 1_000_000_000n
  const f = await fixture(t, { now: () => nowNs })
  f.clock.ms = Date.now() + 3_600_000 // every directory long settled
  const blocks = Array.from({ length: 3 }, (_, i) => bytes(100 + i, 40 + i))
  const [x, y, z] = blocks.map(md5) as [string, string, string]
  const expect = new Map<string, BlockStat>()
  const write = async (data: Buffer): Promise<void> => {
    const { outcome: _, ...stat } = await f.volume.write(md5(data), chunked(data))
    expect.set(stat.hash, stat)
  }
  // Each check's listing warms the cache the next check would be served from if a change were missed.
  const check = async (label: string): Promise<void> => {
    const want = [...expect.values()].sort((a, b) => (a.hash < b.hash ? -1 : 1))
    t.same(await collect(f.volume.index('')), want, `${label}: the index is exact`)
  }
  await write(blocks[0]!)
  await write(blocks[1]!)
  await check('written')
  nowNs += 5_000_000_000n
  expect.set(x, await f.volume.touch(x))
  await check('touch')
  nowNs += 5_000_000_000n
  await write(blocks[0]!)
  await check('rewrite of identical bytes (a touch)')
  await write(blocks[2]!)
  await check(`new block ${z.slice(0, 3)}`)
  await f.volume.trash(y, { deadline: 0 })
  const trashed = expect.get(y)!
  expect.delete(y)
  await check('trash')
  await f.volume.untrash(y)
  expect.set(y, trashed)
  await check('untrash')
})

t.test('index cache: a failing listing answers 5xx, never the cached listing; a failed volume no digests', async (t) => {
  let failing: { op: string; code: string } | undefined
  const app = await serveWithFaults(t, (op) => {
    if (failing?.op === op) throw fault(failing.code)
  })
  const data = 'listed, then unlistable'
  t.equal((await call(app.url, 'PUT', `/${md5(Buffer.from(data))}`, { body: data })).status, 200)
  const paths = ['/index', `/mounts/${FAULT_VOLUME_UUID}/blocks`, `/mounts/${FAULT_VOLUME_UUID}/digests`]
  const get = (path: string) => call(app.url, 'GET', path, { token: ADMIN_TOKEN })
  for (const path of paths) t.equal((await get(path)).status, 200, `${path}: 200 while the disk works (cache warm)`)
  failing = { op: 'readdir', code: 'EIO' }
  for (const path of paths) {
    const res = await get(path)
    t.equal(res.status, 500, `${path}: EIO while listing → 500`)
    t.notOk(res.text.endsWith('\n\n'), `${path}: no listing`)
  }
  failing = { op: 'write', code: 'EIO' }
  for (let i = 0; app.keepstore.mounts[0]!.state !== 'failed'; i++) {
    t.equal((await call(app.url, 'PUT', `/${md5(Buffer.from(`w${i}`))}`, { body: `w${i}` })).status, 500, `write ${i} fails`)
  }
  t.equal((await get(paths[2]!)).status, 503, 'a failed volume: digests 503, so a reader reads its whole index')
})
