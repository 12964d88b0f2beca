import t from 'tap'
import { createHash } from 'node:crypto'
import { symlink, writeFile, mkdir } from 'node:fs/promises'
import { KeepstoreMetrics } from '../../keepstore/metrics.js'
import { Mount } from '../../keepstore/mount.js'
import { createMemoryVolume } from '../../keepstore/volumes/memory-volume.js'
import { startCluster, call, ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY } from '../helpers/cluster.js'
import { createSigner } from '../../shared/signer.js'

const md5 = (b: string): string => createHash('md5').update(b).digest('hex')
const USER = 'user-token-abcdefghijklmnopqrstuvwxyz'
const signer = createSigner({ key: SIGNING_KEY, ttlSeconds: 336 * 3600, maxClockSkewSeconds: 600 })

/** The value of one series of a Prometheus text scrape; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('metrics, as Keep (metrics.go, stats_ticker.go, TestMetrics): arvados_keepstore_volume_* by device_id, request_duration_seconds{code,method}', async (t) => {
  const cluster = await startCluster(t, { volumes: [{ driver: 'directory' }] })
  const url = cluster.urls[0]!
  const root = cluster.config.keepstores[0]!.volumes[0]!.root!
  const device = cluster.keepstores[0]!.keepstore.mounts[0]!.deviceId
  for (const data of ['foo', 'bar']) t.equal((await call(url, 'PUT', `/${md5(data)}`, { body: data })).status, 200)
  t.equal((await call(url, 'GET', `/${signer.sign(`${md5('foo')}+3`, USER)}`, { token: USER })).status, 200)
  // A symlink planted as a block and a copy whose bytes fail their hash: two corrupt copies.
  const planted = md5('planted')
  await mkdir(`${root}/${planted.slice(0, 3)}`, { recursive: true })
  await symlink('/dev/zero', `${root}/${planted.slice(0, 3)}/${planted}`)
  t.equal((await call(url, 'GET', `/${signer.sign(`${planted}+7`, USER)}`, { token: USER })).status, 502)
  await writeFile(`${root}/${md5('bar').slice(0, 3)}/${md5('bar')}`, 'baz')
  t.equal((await call(url, 'GET', `/${signer.sign(`${md5('bar')}+3`, USER)}`, { token: USER })).status, 502)
  // A directory where a block file goes: the PUT's rename fails with EISDIR, a file-system error.
  const dir = md5('dir')
  await mkdir(`${root}/${dir.slice(0, 3)}/${dir}`, { recursive: true })
  t.equal((await call(url, 'PUT', `/${dir}`, { body: 'dir' })).status, 500)

  const text = (await call(url, 'GET', '/metrics', { token: MANAGEMENT_TOKEN })).text
  for (const name of ['arvados_keepstore_volume_operations', 'arvados_keepstore_volume_errors', 'arvados_keepstore_volume_io_bytes']) {
    t.match(text, `# TYPE ${name} counter\n`, `${name} is a counter`)
  }
  const dev = `device_id="${device}"`
  t.equal(sample(text, `arvados_keepstore_volume_io_bytes{${dev},direction="out"}`), 9, 'out: the bytes written to the volume (three 3-byte blocks)')
  t.ok((sample(text, `arvados_keepstore_volume_io_bytes{${dev},direction="in"}`) ?? 0) >= 6, 'in: the bytes read from it')
  t.ok((sample(text, `arvados_keepstore_volume_operations{${dev},operation="rename"}`) ?? 0) >= 2, 'one rename per new block at least')
  t.ok((sample(text, `arvados_keepstore_volume_operations{${dev},operation="fsync"}`) ?? 0) >= 2, 'fsyncs are counted')
  t.equal(sample(text, `arvados_keepstore_volume_errors{${dev},error_type="corrupt"}`), 2, 'the symlink and the bad bytes: two corrupt copies')
  t.equal(sample(text, `arvados_keepstore_volume_errors{${dev},error_type="EISDIR"}`), 1, 'the failed rename: its errno')
  t.notMatch(text, /error_type="ENOENT"/, 'a stat that finds nothing is how absence is found, not an error')
  t.match(text, '# TYPE request_duration_seconds summary\n')
  t.equal(sample(text, 'request_duration_seconds_count{code="200",method="put"}'), 2, 'Keep\'s labels: status code and lower-case method')
  t.equal(sample(text, 'request_duration_seconds_count{code="502",method="get"}'), 2)
  t.ok((sample(text, 'request_duration_seconds_sum{code="200",method="put"}') ?? -1) >= 0)
  t.equal(sample(text, 'arvados_version_running{version="0.1.0"}'), 1)
  t.notMatch(text, /^keepstore_volume_errors/m, 'our old per-volume error gauge is gone: Keep\'s counter replaces it')
})

t.test('metrics, as Keep (pull_worker.go, trash_worker.go, request_limiter.go): queue gauges read at scrape time', async (t) => {
  const mount = new Mount({ volume: createMemoryVolume({ uuid: 'zzzzz-nyw5e-000000000000000' }), replication: 1, storageClasses: ['default'], priority: 0, readOnly: false, minFreeSpace: 0 })
  const counters = { pull: { queued: 5, in_progress: 2, done: 7, failed: 1, skipped: 3 }, trash: { queued: 0, in_progress: 1, done: 0, failed: 0, skipped: 0 } }
  const metrics = new KeepstoreMetrics({
    mounts: () => [mount],
    worklists: () => counters,
    queues: () => ({ api: { inUse: 3, waiting: 4, max: 64, maxQueued: 64 }, write: { inUse: 1, waiting: 0, max: 16, maxQueued: 16 } }),
  })
  const text = await metrics.registry.metrics()
  const want: Array<[string, number]> = [
    ['arvados_keepstore_pull_queue_pending_entries', 5],
    ['arvados_keepstore_pull_queue_inprogress_entries', 2],
    ['arvados_keepstore_trash_queue_pending_entries', 0],
    ['arvados_keepstore_trash_queue_inprogress_entries', 1],
    ['arvados_concurrent_requests{queue="api"}', 3],
    ['arvados_max_concurrent_requests{queue="api"}', 64],
    ['arvados_queued_requests{queue="api",priority="normal"}', 4],
    ['arvados_max_queued_requests{queue="write"}', 16],
    ['keepstore_worklist_items{list="pull",state="failed"}', 1],
  ]
  for (const [series, value] of want) t.equal(sample(text, series), value, series)
  t.notMatch(text, /keepstore_worklist_items\{[^}]*state="queued"/, 'queued and in progress only under Keep\'s names')
  counters.pull.queued = 0
  t.equal(sample(await metrics.registry.metrics(), 'arvados_keepstore_pull_queue_pending_entries'), 0, 'the next scrape reads the new value')
})
