import { createHash } from 'node:crypto'
import t from 'tap'
import { md5hex } from '../../shared/hash.js'
import { ADMIN_TOKEN, call } from '../helpers/cluster.js'
import { collection } from '../helpers/datamanager-cluster.js'
import { NS_PER_S, liveHashesOf, mtimeNs, nanosecondMtimesUnsupported, trashedCopies } from '../helpers/block-files.js'
import { startDecisionCluster } from '../helpers/decision-cluster.js'
import { blockFile, drained, type KeepstoreProcess } from '../helpers/process-cluster.js'

// PROTOCOL §5 and §8 trash decisions, end to end: child keepstores on real
// directories behind recording proxies, the real bin/datamanager, one fixed
// clock for every child, nanosecond block mtimes. Each test uses its own
// blocks and collections; blocks of earlier tests may be trashed as garbage
// meanwhile, which no test reads.
const skip = nanosecondMtimesUnsupported(t.testdir({}))
if (skip !== undefined) {
  t.test('datamanager e2e decisions', { skip }, async () => {})
} else {
  await main()
}

async function main(): Promise<void> {
  const { pc, all, TTL_NS, cutoff, COLL, hashOf, commit, trashFor, place, keeper } = await startDecisionCluster(t)
  const [k0, k1] = all as [KeepstoreProcess, KeepstoreProcess]

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
}
