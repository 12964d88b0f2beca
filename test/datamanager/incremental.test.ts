import { readdirSync, readlinkSync } from 'node:fs'
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import { KeepError } from '../../shared/errors.js'
import { md5hex } from '../../shared/hash.js'
import { KeepstoreClient, type RequestOptions } from '../../shared/keepstore-client.js'
import { encodeState, openIndexStore, type StoredRecord, type StoreState } from '../../datamanager/index-store.js'
import { ADMIN_TOKEN, HOUR, T0 } from '../helpers/cluster-config.js'
import { lastList, modelSize, startModelCluster, type ModelCluster } from '../helpers/model-cluster.js'
import type { RunOptions } from '../../datamanager/run.js'

// The equivalence of incremental and full runs over random changes is the property test's
// (incremental-property.test.ts); these are the paths by name, each run counted.

/** A block hash starting with `prefix`. */
const hashIn = (prefix: string, n: number): string => prefix + md5hex(`${prefix}/${n}`).slice(prefix.length)
const OLD = BigInt(T0 - 10 * HOUR) * 1_000_000n
const COLL = (n: number): string => `zzzzz-4zz18-${String(n).padStart(15, '0')}`

/** Three servers of one mount; blocks in prefixes a00, b11, c22: some referenced, some garbage, all old. */
async function scenario(t: Test): Promise<{ dm: ModelCluster; hashes: string[] }> {
  const dm = await startModelCluster(t, [1, 1, 1])
  const hashes: string[] = []
  for (const prefix of ['a00', 'b11', 'c22']) for (let n = 0; n < 4; n++) hashes.push(hashIn(prefix, n))
  hashes.forEach((h, i) => {
    for (const k of dm.keepstores.slice(0, 1 + (i % 3))) k.mounts[0]!.blocks.set(h, { size: modelSize(h), mtime: OLD + BigInt(i) })
  })
  await dm.writeCollections([{ uuid: COLL(1), hashes: hashes.filter((_, i) => i % 4 !== 3) }])
  dm.clock.now = T0
  return { dm, hashes }
}

function listsOf(dm: ModelCluster, since: number[]): string[] {
  return dm.keepstores.flatMap((k, i) => [lastList(k, '/pull', since[i]) ?? '', lastList(k, '/trash', since[i]) ?? ''])
}

/** The lists a full read would send now (a dry run with --full). */
async function fullDryRun(dm: ModelCluster): Promise<string[]> {
  const result = await dm.run({ dryRun: true, full: true })
  if (result.exitCode !== 0) throw new Error(`full dry run exited ${result.exitCode}`)
  const out: string[] = []
  for (let i = 0; i < dm.keepstores.length; i++) {
    const lists = await dm.dryRunLists(i)
    out.push(lists.pull, lists.trash)
  }
  return out
}

const marks = (dm: ModelCluster): number[] => dm.keepstores.map((k) => k.lists.length)
const served = (dm: ModelCluster): number => dm.keepstores.reduce((n, k) => n + k.served.indexBytes, 0)
const add = (dm: ModelCluster, server: number, hash: string, mtime = OLD): void => void dm.keepstores[server]!.mounts[0]!.blocks.set(hash, { size: modelSize(hash), mtime })

t.test('incremental: unchanged → nothing read, every decision reused; a changed prefix → only it read and decided again; a block past the TTL → its prefix decided again', async (t) => {
  const { dm, hashes } = await scenario(t)
  const young = hashIn('c22', 50)
  add(dm, 2, young, BigInt(T0) * 1_000_000n)
  const first = await dm.run()
  t.equal(first.exitCode, 0)
  t.equal(first.report?.incremental.fullMounts, 3, 'the first run reads every mount in full')
  t.same(first.report?.servers.map((s) => s.mounts[0]?.fullReason), ['no stored index', 'no stored index', 'no stored index'])
  t.equal(first.report?.incremental.stateSaved, true)
  const firstLists = listsOf(dm, [0, 0, 0])
  t.ok(firstLists.some((l) => l !== '[]'), 'the scenario has pulls or trashes to send')

  let bytesBefore = served(dm)
  let since = marks(dm)
  const unchanged = await dm.run()
  t.equal(unchanged.exitCode, 0)
  t.equal(served(dm) - bytesBefore, 0, 'no index byte read')
  t.same(unchanged.report?.incremental, {
    collections: 'reused',
    fullMounts: 0,
    incrementalMounts: 3,
    indexBytes: 0,
    prefixesReread: 0,
    prefixesReused: 4096,
    stateSaved: true,
  })
  t.same(unchanged.report?.servers.map((s) => s.mounts[0]?.read), ['incremental', 'incremental', 'incremental'])
  t.same(listsOf(dm, since), firstLists, 'the same lists as the full read')
  t.same(unchanged.report?.categories, first.report?.categories, 'the same categories')
  t.equal(unchanged.report?.indexLines, first.report?.indexLines)
  t.same(unchanged.report?.keep, first.report?.keep, "keep-balance's statistics, summed from reused decisions")
  t.ok((first.report?.keep?.underreplicated.blocks ?? 0) > 0, 'the scenario has blocks held fewer times than wanted')
  const confirmedFirst = await readFile(path.join(dm.stateDir, 'collections-confirmed.jsonl'), 'utf8')
  t.match(confirmedFirst, /"replication_confirmed":1,/, 'a collection with a block held once confirms 1')
  t.equal(await readFile(path.join(dm.stateDir, 'collections-confirmed.jsonl'), 'utf8'), confirmedFirst, 'written again by the unchanged run, the same')
  // The records the confirmed file is built from are gone (a state from before they were kept): read the collections for them alone.
  await rm(path.join(dm.stateDir, 'confirmed'), { recursive: true })
  const again = await dm.run()
  t.equal(again.report?.incremental.collections, 'reused', 'the references are still reused')
  t.equal(await readFile(path.join(dm.stateDir, 'collections-confirmed.jsonl'), 'utf8'), confirmedFirst, 'and the confirmed file is the same')

  add(dm, 1, hashIn('b11', 99))
  dm.keepstores[0]!.mounts[0]!.blocks.delete(hashes[0]!)
  let expected = await fullDryRun(dm)
  bytesBefore = served(dm)
  since = marks(dm)
  // The first prefix read loses its connection (a keep-alive socket the server closed): tried again, not a full read.
  const client = new KeepstoreClient({ token: ADMIN_TOKEN })
  t.teardown(() => client.close())
  let lost = 0
  const flaky = {
    getJson: client.getJson.bind(client),
    putJson: client.putJson.bind(client),
    getStream: (url: string, p: string, o?: RequestOptions) => {
      if (/\/blocks\/[0-9a-f]{3}$/.test(p) && lost++ === 0) return Promise.reject(new KeepError('KEEP_UNAVAILABLE', `${url}: ECONNRESET`))
      return client.getStream(url, p, o)
    },
  }
  const changed = await dm.run({ client: flaky })
  const confirmedIncremental = await readFile(path.join(dm.stateDir, 'collections-confirmed.jsonl'), 'utf8')
  t.equal(lost, 3, 'one read lost, then two prefixes read')
  t.equal(changed.exitCode, 0)
  t.same(changed.report?.servers.map((s) => s.mounts[0]?.prefixesReread), [1, 1, 0], 'a00 read again on the first mount, b11 on the second')
  t.equal(changed.report?.incremental.prefixesReused, 4094, 'the decisions of the other prefixes are reused')
  const reread = served(dm) - bytesBefore
  t.equal(changed.report?.incremental.indexBytes, reread)
  t.ok(reread > 0 && reread < 1000, `only two prefixes' lines read (${reread} bytes)`)
  t.same(listsOf(dm, since), expected, 'the lists of a full read')
  const full = await dm.run({ full: true })
  t.equal(full.exitCode, 0)
  t.equal(await readFile(path.join(dm.stateDir, 'collections-confirmed.jsonl'), 'utf8'), confirmedIncremental, "collections-confirmed.jsonl: the incremental run's is a full run's")
  t.same(changed.report?.keep, full.report?.keep, "and so are keep-balance's statistics")

  dm.clock.now = T0 + HOUR + 1
  expected = await fullDryRun(dm)
  since = marks(dm)
  const later = await dm.run()
  t.equal(later.report?.incremental.prefixesReread, 0)
  t.equal(later.report?.incremental.prefixesReused, 4095, 'c22, where a block is now past the TTL, is decided again')
  t.match(lastList(dm.keepstores[2]!, '/trash', since[2]), young, 'and that block is trashed')
  t.same(listsOf(dm, since), expected)
})

/** Flips one byte of a stored record, in place. */
async function damage(dm: ModelCluster, pick: (state: StoreState) => StoredRecord): Promise<void> {
  const dir = path.join(dm.stateDir, 'incremental')
  const store = await openIndexStore(dir)
  const record = pick(store.committed)
  await store.close()
  const file = path.join(dir, record.segment)
  const bytes = await readFile(file)
  bytes[record.offset + 1] = bytes[record.offset + 1] === 0x30 ? 0x31 : 0x30
  await writeFile(file, bytes)
}

t.test('incremental: any doubt is a full read of that mount, saying why — no digests, a prefix that changed again, damaged stored lines, --full — and damaged stored references are read from the collections', async (t) => {
  const { dm, hashes } = await scenario(t)
  t.equal((await dm.run()).exitCode, 0)
  dm.keepstores[0]!.digests = false
  add(dm, 1, hashIn('a00', 77))
  let raced = false
  dm.keepstores[1]!.beforeGet = (p) => {
    // Between the digests and the prefix read, the prefix changes again.
    if (p.endsWith('/blocks/a00') && !raced) {
      raced = true
      dm.keepstores[1]!.mounts[0]!.blocks.delete(hashes[1]!)
    }
  }
  const b11 = parseInt('b11', 16)
  await damage(dm, (state) => state.lines.get(dm.keepstores[2]!.mounts[0]!.uuid)![b11]!)
  // b11 changes on another mount: the damaged lines are needed to decide it again.
  add(dm, 1, hashIn('b11', 6))
  const run = await dm.run()
  t.equal(run.exitCode, 0)
  const mounts = run.report!.servers.map((s) => s.mounts[0]!)
  t.same(mounts.map((m) => m.read), ['full', 'full', 'full'])
  t.match(mounts[0]?.fullReason, /^no usable digests: 400/)
  t.match(mounts[1]?.fullReason, /prefix a00 still differs from its digest/)
  t.match(mounts[2]?.fullReason, /stored lines of prefix b11 do not match their sha256/)
  t.equal(run.report?.incremental.prefixesReused, 0, 'no decision reused while a mount is read in full')

  dm.keepstores[0]!.digests = true
  await damage(dm, (state) => state.refs![b11]!)
  add(dm, 0, hashIn('b11', 7))
  const expected = await fullDryRun(dm)
  const since = marks(dm)
  const again = await dm.run()
  t.equal(again.exitCode, 0)
  t.equal(again.report?.incremental.collections, 'read', 'the collections were read instead of the damaged references')
  t.same(listsOf(dm, since), expected)

  const full = await dm.run({ full: true })
  t.same(
    full.report!.servers.map((s) => s.mounts[0]!.fullReason),
    ['--full', '--full', '--full'],
  )
  t.equal(full.report?.incremental.collections, 'read')
})

t.test('incremental: a dry run or a refused run leaves the stored state as the last committed run left it', async (t) => {
  const { dm } = await scenario(t)
  t.equal((await dm.run()).exitCode, 0)
  const dir = path.join(dm.stateDir, 'incremental')
  const snapshot = async (): Promise<string[]> => {
    const segments = (await readdir(dir)).filter((n) => n.startsWith('seg-')).sort()
    const contents = await Promise.all(segments.map(async (n) => `${n} ${md5hex(await readFile(path.join(dir, n)))}`))
    const store = await openIndexStore(dir)
    const manifest = [...encodeState(store.committed)].map(([k, v]) => `${k} = ${v}`)
    await store.close()
    return [...contents, ...manifest]
  }
  const before = await snapshot()
  add(dm, 0, hashIn('a00', 5))
  const dry = await dm.run({ dryRun: true })
  t.equal(dry.report?.incremental.prefixesReread, 1, 'the dry run read the changed prefix')
  t.equal(dry.report?.incremental.stateSaved, false)
  t.same(await snapshot(), before, 'no segment or manifest record changed')
  await writeFile(path.join(dm.dir, 'collections.jsonl'), 'not json\n')
  const refused = await dm.run()
  t.equal(refused.exitCode, 1)
  t.equal(refused.report?.incremental.stateSaved, false)
  t.same(await snapshot(), before)
})

/**
 * Two full runs, on the main thread then with `threaded` options: both commit, send the same lists (some item
 * among them) and report the same collections, categories, keep statistics and lost blocks. Returns the first
 * run's lists; `between` runs between the two.
 */
async function sameAsMainThread(t: Test, dm: ModelCluster, main: Partial<RunOptions>, threaded: Partial<RunOptions>, between?: () => Promise<void>): Promise<string[]> {
  let since = marks(dm)
  const first = await dm.run({ full: true, ...main })
  t.equal(first.exitCode, 0)
  const lists = listsOf(dm, since)
  t.ok(lists.some((l) => l.includes('"locator"')), 'the runs sent some pull or trash item')
  await between?.()
  since = marks(dm)
  const second = await dm.run({ full: true, ...threaded })
  t.equal(second.exitCode, 0)
  t.same(listsOf(dm, since), lists)
  for (const key of ['collections', 'categories', 'keep', 'lost'] as const) t.same(second.report?.[key], first.report?.[key], key)
  return lists
}

t.test('collections scanned in a worker thread: the same lists, report and collections-confirmed.jsonl as a scan on the main thread', async (t) => {
  const { dm } = await scenario(t)
  const confirmedFile = path.join(dm.stateDir, 'collections-confirmed.jsonl')
  let inlineConfirmed = ''
  await sameAsMainThread(t, dm, { collectionsWorkerBytes: Number.MAX_SAFE_INTEGER }, { collectionsWorkerBytes: 0 }, async () => {
    inlineConfirmed = await readFile(confirmedFile, 'utf8')
    await rm(confirmedFile)
  })
  t.equal(await readFile(confirmedFile, 'utf8'), inlineConfirmed)
  t.match(inlineConfirmed, COLL(1))
})

t.test('decided in worker threads: the same lists, report and stored state as on the main thread; a worker that finds damaged stored references sends the pass back to the main thread', async (t) => {
  const { dm } = await scenario(t)
  const serialLists = await sameAsMainThread(t, dm, { parallelLines: Number.POSITIVE_INFINITY }, { parallelLines: 0 })
  // A thread's descriptors are the process's: the segment files the threads read are closed, not left to terminate().
  const segments = readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return /\/seg-[^/]*\.dat( \(deleted\))?$/.test(readlinkSync(`/proc/self/fd/${fd}`))
    } catch {
      return false
    }
  })
  t.same(segments, [], 'no segment file left open')
  // What the threaded run stored serves the next run: every decision reused, nothing read.
  let since = marks(dm)
  const next = await dm.run()
  t.equal(next.report?.incremental.prefixesReused, 4096)
  t.equal(next.report?.incremental.indexBytes, 0)
  t.same(listsOf(dm, since), serialLists)

  // A mount's priority changes (every mount read in full, nothing reused) while the collections do not (their stored
  // references are used), and those references are damaged: the worker finds it, the main thread reads the collections.
  await damage(dm, (state) => state.refs![parseInt('b11', 16)]!)
  dm.keepstores[1]!.mounts[0]!.priority = 5
  const expected = await fullDryRun(dm)
  since = marks(dm)
  const doubted = await dm.run({ parallelLines: 0 })
  t.equal(doubted.exitCode, 0)
  t.equal(doubted.report?.incremental.collections, 'read', 'the collections were read instead of the damaged references')
  t.same(doubted.report!.servers.map((s) => s.mounts[0]!.read), ['full', 'full', 'full'])
  t.same(listsOf(dm, since), expected)
})
