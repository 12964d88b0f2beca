import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { md5hex } from '../../shared/hash.js'
import { ADMIN_TOKEN, call } from '../helpers/cluster.js'
import { collection } from '../helpers/datamanager-cluster.js'
import { NS_PER_S, liveHashesOf, mtimeNs, nanosecondMtimesUnsupported, setMtimeNs, trashedCopies } from '../helpers/block-files.js'
import {
  blockFile,
  drained,
  parseExact,
  putOn,
  startProcessCluster,
  type DmResult,
  type KeepstoreProcess,
} from '../helpers/process-cluster.js'

// PROTOCOL §8 decisions, end to end: three child keepstores on real
// directories behind recording proxies, the real bin/datamanager, and one
// fixed clock for every child (the fixed-clock preload), so "older than the
// TTL" is tested to the nanosecond. Block ages are set on the files with
// nanosecond mtimes. Each test uses its own blocks and collections; blocks
// of earlier tests may be trashed as garbage meanwhile, which no test reads.
const skip = nanosecondMtimesUnsupported(t.testdir({}))
if (skip !== undefined) {
  t.test('datamanager e2e decisions', { skip }, async () => {})
} else {
  await main()
}

async function main(): Promise<void> {
  const F = Math.floor(Date.now() / 1000) * 1000
  const TTL_NS = 3600n * NS_PER_S
  const cutoff = BigInt(F) * 1_000_000n - TTL_NS
  const pc = await startProcessCluster(t, { keepstores: 3, proxies: true, fixedNowMs: F })
  const all = pc.keepstores
  const [k0, k1] = all as [KeepstoreProcess, KeepstoreProcess]
  let n = 0
  const COLL = (): string => `zzzzz-4zz18-${String(++n).padStart(15, '0')}`
  const hashOf = (locator: string): string => locator.slice(0, 32)

  interface TrashSent {
    locator: string
    block_mtime: bigint
    mount_uuid?: string
  }

  /** One datamanager run that must commit; returns what each keepstore was sent (its last pull and trash list of the run). */
  async function commit(t: Test, name: string, records: string[]): Promise<{ result: DmResult; pulls: Map<KeepstoreProcess, Array<{ locator: string; servers: string[]; mount_uuid?: string }>>; trashes: Map<KeepstoreProcess, TrashSent[]> }> {
    const marks = all.map((k) => k.proxy!.requests.length)
    const result = await pc.datamanager({ name, collections: records.map((r) => `${r}\n`).join('') })
    t.equal(result.code, 0, `the run commits; stderr: ${result.stderr}`)
    t.equal(result.report?.outcome, 'committed')
    const pulls = new Map()
    const trashes = new Map()
    all.forEach((k, i) => {
      const sent = k.proxy!.requests.slice(marks[i])
      const last = (p: string): unknown[] => parseExact(sent.filter((q) => q.method === 'PUT' && q.path === p).at(-1)?.body ?? '[]') as unknown[]
      pulls.set(k, last('/pull'))
      trashes.set(k, last('/trash'))
    })
    return { result, pulls, trashes }
  }

  const trashFor = (sent: Map<KeepstoreProcess, TrashSent[]>, hash: string): Array<[number, TrashSent]> =>
    [...sent].flatMap(([k, items]) => items.filter((i) => i.locator.startsWith(hash)).map((i): [number, TrashSent] => [k.index, i]))

  /** Stores `data` on each of `on` and sets every copy's mtime to `mtimes[i]`. */
  async function place(data: string, on: KeepstoreProcess[], mtimes: bigint[]): Promise<string> {
    let locator = ''
    for (const [i, k] of on.entries()) {
      locator = await putOn(k, data)
      setMtimeNs(blockFile(k, hashOf(locator)), mtimes[i]!)
    }
    return locator
  }

  // A referenced block where it belongs, so that every run reads a collection.
  const keeperData = 'a referenced block where it belongs\n'
  const keeper = await place(keeperData, pc.order(md5hex(keeperData)).slice(0, 2), [cutoff + NS_PER_S, cutoff + NS_PER_S])

  await t.test('datamanager e2e: garbage 1 ns older than the TTL is trashed; exactly TTL old or one second younger is kept', async (t) => {
    const older = await place('garbage, 1 ns past the TTL\n', [k0], [cutoff - 1n])
    const exact = await place('garbage, exactly the TTL old\n', [k0], [cutoff])
    const younger = await place('garbage, one second younger\n', [k0], [cutoff + NS_PER_S])
    const { trashes } = await commit(t, 'ttl', [collection(COLL(), [keeper])])
    t.same(trashFor(trashes, hashOf(older)), [[0, { locator: older, block_mtime: cutoff - 1n, mount_uuid: k0.mount }]], 'only the older one is listed, with its exact mtime')
    t.same(trashFor(trashes, hashOf(exact)), [], 'exactly the TTL old is not older than the TTL')
    t.same(trashFor(trashes, hashOf(younger)), [])
    await drained(all, 'trash')
    t.equal(trashedCopies(k0.root, hashOf(older)).length, 1, 'the trash worker trashed it')
    t.ok(liveHashesOf(k0, [exact, younger]), 'the other two are still live')
  })

  await t.test('datamanager e2e: a nanosecond mtime travels index → datamanager → trash list → trash worker; 1 ns off is not trashed', async (t) => {
    // An hour past the cutoff, with digits below the microsecond (what Node's utimes would drop).
    const exactNs = cutoff - TTL_NS + 123_456_789n
    const travels = await place('garbage with a nanosecond mtime\n', [k1], [exactNs])
    const offByOne = await place('garbage the index misreports by 1 ns\n', [k1], [exactNs + 2n])
    const file = blockFile(k1, hashOf(travels))
    t.equal(mtimeNs(file), exactNs, 'the file system keeps the nanoseconds')
    t.not(exactNs % 1000n, 0n, 'digits below the microsecond')
    const index = (await call(k1.direct, 'GET', `/mounts/${k1.mount}/blocks`, { token: ADMIN_TOKEN })).text
    t.match(index, `${travels} ${exactNs}\n`, 'the index line carries every digit')
    // The index the datamanager reads says 1 ns less for offByOne than the file holds.
    k1.proxy!.indexFault = (body) => body.replace(`${offByOne} ${exactNs + 2n}\n`, `${offByOne} ${exactNs + 1n}\n`)
    const { trashes } = await commit(t, 'ns', [collection(COLL(), [keeper])]).finally(() => (k1.proxy!.indexFault = undefined))
    t.same(trashFor(trashes, hashOf(travels)), [[1, { locator: travels, block_mtime: exactNs, mount_uuid: k1.mount }]], 'block_mtime is the file\'s mtimeNs exactly')
    t.same(trashFor(trashes, hashOf(offByOne)), [[1, { locator: offByOne, block_mtime: exactNs + 1n, mount_uuid: k1.mount }]], 'the list carries what the index said')
    await drained(all, 'trash')
    t.equal(trashedCopies(k1.root, hashOf(travels)).length, 1, 'the exact match is trashed')
    t.ok(liveHashesOf(k1, [offByOne]), 'the block whose mtime differs by 1 ns is not')
    t.equal(trashedCopies(k1.root, hashOf(offByOne)).length, 0)
  })

  await t.test('datamanager e2e: an extra replica with the mtime of a kept one is never trashed; 1 ns apart, it is', async (t) => {
    const twinData = 'three replicas, one mtime\n'
    const twinOrder = pc.order(md5hex(twinData))
    const old = cutoff - TTL_NS
    const twin = await place(twinData, twinOrder, [old, old, old])
    const apartData = 'three replicas, the extra 1 ns apart\n'
    const apartOrder = pc.order(md5hex(apartData))
    const apart = await place(apartData, apartOrder, [old, old, old - 1n])
    const { trashes } = await commit(t, 'twins', [collection(COLL(), [keeper, twin, apart], { replication_desired: 2 })])
    t.same(trashFor(trashes, hashOf(twin)), [], 'equal mtimes may be one file seen twice: not listed')
    t.same(trashFor(trashes, hashOf(apart)), [[apartOrder[2]!.index, { locator: apart, block_mtime: old - 1n, mount_uuid: apartOrder[2]!.mount }]])
    await drained(all, 'trash')
    t.ok(twinOrder.every((k) => liveHashesOf(k, [twin])), 'all three equal-mtime replicas are live')
    t.equal(trashedCopies(apartOrder[2]!.root, hashOf(apart)).length, 1, 'the extra replica 1 ns apart is trashed')
    t.ok(apartOrder.slice(0, 2).every((k) => liveHashesOf(k, [apart])), 'the two wanted replicas are live')
  })

  // keep-balance: extra replicas with one mtime may be one file seen twice, so a run trashes at most one of them.
  await t.test('datamanager e2e: of several unwanted replicas with one mtime, at most one is trashed per run', async (t) => {
    const old = cutoff - TTL_NS
    const extraData = 'wanted once, two extra copies with one mtime\n'
    const extraOrder = pc.order(md5hex(extraData))
    const extra = await place(extraData, extraOrder, [old, old - 9n, old - 9n])
    const { trashes } = await commit(t, 'one-per-mtime', [collection(COLL(), [keeper, extra], { replication_desired: 1 })])
    t.equal(trashFor(trashes, hashOf(extra)).length, 1, 'one of the two extra copies is listed')
    await drained(all, 'trash')
    t.equal(extraOrder.slice(1).filter((k) => liveHashesOf(k, [extra])).length, 1, 'one extra copy is still live')
    t.ok(liveHashesOf(extraOrder[0]!, [extra]), 'the wanted copy is live')
  })

  await t.test('datamanager e2e: an extra replica is trashed only once the wanted positions hold the desired replication', async (t) => {
    const data = 'wanted on two, held on the first and the third\n'
    const order = pc.order(md5hex(data))
    const old = cutoff - TTL_NS
    const block = await place(data, [order[0]!, order[2]!], [old, old - 5n])
    const records = [collection(COLL(), [keeper, block], { replication_desired: 2 })]
    const first = await commit(t, 'wait', records)
    t.same(first.pulls.get(order[1]!)?.filter((p) => p.locator === block), [{ locator: block, servers: [order[0]!.url, order[2]!.url], mount_uuid: order[1]!.mount }], 'pulled to the missing position')
    t.same(trashFor(first.trashes, hashOf(block)), [], 'not trashed while a wanted position lacks it')
    await drained(all, 'pull')
    await drained(all, 'trash')
    t.ok(liveHashesOf(order[1]!, [block]) && liveHashesOf(order[2]!, [block]), 'pulled, and the extra copy still live')
    const second = await commit(t, 'wait', records)
    t.same(trashFor(second.trashes, hashOf(block)), [[order[2]!.index, { locator: block, block_mtime: old - 5n, mount_uuid: order[2]!.mount }]], 'now the extra copy is listed')
    await drained(all, 'trash')
    t.equal(trashedCopies(order[2]!.root, hashOf(block)).length, 1, 'and trashed')
    t.ok(liveHashesOf(order[0]!, [block]) && liveHashesOf(order[1]!, [block]))
  })

  await t.test('datamanager e2e: an under-replicated block is pulled to its rendezvous positions, and then the bytes are there', async (t) => {
    const data = 'under-replicated: one copy, on the last server\n'
    const order = pc.order(md5hex(data))
    const block = await place(data, [order[2]!], [cutoff - TTL_NS])
    const { pulls } = await commit(t, 'pull', [collection(COLL(), [keeper, block], { replication_desired: 2 })])
    for (const k of order.slice(0, 2)) {
      t.same(pulls.get(k)?.filter((p) => p.locator === block), [{ locator: block, servers: [order[2]!.url], mount_uuid: k.mount }], `a pull to keepstore ${k.index}, from the holder`)
    }
    t.same(pulls.get(order[2]!)?.filter((p) => p.locator === block), [])
    await drained(all, 'pull')
    for (const k of order.slice(0, 2)) {
      const res = await call(k.direct, 'GET', `/${pc.sign(block)}`, { token: ADMIN_TOKEN })
      t.equal(res.status, 200, `keepstore ${k.index} serves it`)
      t.equal(createHash('md5').update(res.body).digest('hex'), hashOf(block), 'byte-identical')
    }
  })
}
