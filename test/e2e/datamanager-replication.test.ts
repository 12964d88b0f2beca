import { createHash } from 'node:crypto'
import t from 'tap'
import { md5hex } from '../../shared/hash.js'
import { ADMIN_TOKEN, call } from '../helpers/cluster.js'
import { collection } from '../helpers/datamanager-cluster.js'
import { liveHashesOf, nanosecondMtimesUnsupported, trashedCopies } from '../helpers/block-files.js'
import { startDecisionCluster } from '../helpers/decision-cluster.js'
import { drained } from '../helpers/process-cluster.js'

// PROTOCOL §8 replication decisions, end to end (set-up as in
// datamanager-decisions.test.ts): trash waits for the wanted positions, and
// an under-replicated block is pulled to them.
const skip = nanosecondMtimesUnsupported(t.testdir({}))
if (skip !== undefined) {
  t.test('datamanager e2e replication', { skip }, async () => {})
} else {
  await main()
}

async function main(): Promise<void> {
  const { pc, all, TTL_NS, cutoff, COLL, hashOf, commit, trashFor, place, keeper } = await startDecisionCluster(t)
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
