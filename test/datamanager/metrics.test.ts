import t from 'tap'
import { md5hex } from '../../shared/hash.js'
import { DatamanagerMetrics } from '../../datamanager/metrics.js'
import { HOUR, T0, collection, putBlock, rendezvous, startDmCluster, writeCollections } from '../helpers/datamanager-cluster.js'

/** `name{labels} value` lines of a Prometheus text, as a map. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    out.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return out
}

t.test('metrics: keep-balance\'s arvados_keep_* gauges per category, class and replica count, and its phase summaries, with its names and types', async (t) => {
  const dm = await startDmCluster(t)
  const urlOf = (uuid: string): string => dm.urls[dm.config.keepstores.findIndex((k) => k.uuid === uuid)]!
  /** Stores `data` at these positions of its rendezvous order. */
  const place = async (data: string, positions: number[]): Promise<string> => {
    const order = rendezvous(dm, md5hex(data))
    let locator = ''
    for (const p of positions) {
      dm.clock.now++ // distinct mtimes: copies with one mtime may be one file seen twice, and are never trashed
      locator = await putBlock(urlOf(order[p]!), data)
    }
    return locator
  }
  const balanced = await place('balanced: at its two positions\n', [0, 1])
  const over = await place('over: one copy too many\n', [0, 1, 2])
  const under = await place('under: one copy\n', [0])
  await place('garbage\n', [2])
  const lost = 'acbd18db4cc2f85cedef654fccc4a4d8+3'
  await writeCollections(dm.collectionsFile, [collection('zzzzz-4zz18-000000000000001', [balanced, over, under, lost])])
  dm.clock.now = T0 + 2 * HOUR
  await place('transient: young and unreferenced\n', [1])
  const size = (locator: string): number => Number(locator.split('+')[1])
  const [sb, so, su] = [size(balanced), size(over), size(under)]

  const result = await dm.run()
  t.equal(result.report?.outcome, 'committed')
  const metrics = new DatamanagerMetrics()
  metrics.observe(result.report!)
  const text = await metrics.registry.metrics()
  const got = samples(text)
  const expect = (name: string, value: number): void => {
    t.equal(got.get(name), value, name)
  }
  // keep-balance's categories: replicas, blocks, bytes (size × replicas).
  expect('arvados_keep_balanced_replicas', 2)
  expect('arvados_keep_balanced_blocks', 1)
  expect('arvados_keep_balanced_bytes', 2 * sb)
  expect('arvados_keep_overreplicated_replicas', 1)
  expect('arvados_keep_overreplicated_bytes', so)
  expect('arvados_keep_underreplicated_replicas', 1)
  expect('arvados_keep_underreplicated_bytes', su)
  expect('arvados_keep_garbage_blocks', 1)
  expect('arvados_keep_transient_blocks', 1)
  expect('arvados_keep_lost_blocks', 1)
  expect('arvados_keep_lost_bytes', 3)
  expect('arvados_keep_unachievable_blocks', 0)
  expect('arvados_keep_desired_replicas', 5)
  expect('arvados_keep_desired_blocks', 3)
  expect('arvados_keep_total_replicas', 8)
  expect('arvados_keep_total_blocks', 5)
  // Replica counts 0 (the lost block), 1 (under, garbage, transient), 2, 3; zeros above, as keep-balance.
  for (const [n, count] of [[0, 1], [1, 3], [2, 1], [3, 1], [4, 0], [7, 0]] as const) expect(`arvados_keep_replicated_block_count{replicas="${n}"}`, count)
  expect('arvados_keep_usage_replicas{storage_class="default",status="needed"}', 5)
  expect('arvados_keep_usage_replicas{storage_class="default",status="unneeded"}', 3)
  expect('arvados_keep_usage_blocks{storage_class="default",status="pulling"}', 1)
  expect('arvados_keep_usage_blocks{storage_class="default",status="unachievable"}', 1)
  expect('arvados_keep_referenced_blocks', 4)
  expect('arvados_keep_reference_count', 4)
  expect('arvados_keep_collection_bytes', sb + so + su + 3)
  expect('arvados_keep_dedup_block_ratio', 1)
  expect('arvados_keep_pull_entries_sent_count', 1)
  expect('arvados_keep_trash_entries_sent_count', 2)
  expect('arvados_keep_trash_entries_deferred_count', 0)
  for (const phase of ['sweep', 'get_state', 'changeset_compute', 'send_pull_lists', 'send_trash_lists', 'update_collections']) {
    expect(`arvados_keepbalance_${phase}_seconds_count`, 1)
    t.match(text, `# TYPE arvados_keepbalance_${phase}_seconds summary`)
  }
  t.notMatch(text, /arvados_keepbalance_sweep_seconds\{quantile/, 'no quantiles: keep-balance\'s summaries have none')
  t.match(text, '# TYPE arvados_keep_total_blocks gauge')
  t.match(text, '# HELP arvados_keep_total_blocks blocks of current backend storage usage')
  expect('datamanager_collections_confirmed', 1)

  // A run that could not see every keepstore keeps the last values (keep-balance's would not get that far).
  dm.client.down.add(dm.urls[2]!)
  const refused = await dm.run()
  t.equal(refused.report?.outcome, 'refused')
  metrics.observe(refused.report!)
  const after = samples(await metrics.registry.metrics())
  t.equal(after.get('arvados_keep_total_replicas'), 8, 'the gauges still show the last complete view')
  t.equal(after.get('arvados_keepbalance_sweep_seconds_count'), 2, 'the sweep is timed all the same')
  t.equal(after.get('datamanager_refusals_total{reason="keepstore-unavailable"}'), 1)
})
