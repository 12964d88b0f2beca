import { Registry, Counter, Histogram, Gauge, type Metric } from 'prom-client'
import type { Mount } from './mount.js'
import type { VolumeStats } from './volumes/volume.js'

export interface WorklistCounters {
  queued: number
  in_progress: number
  done: number
  failed: number
  skipped: number
}

/** A request pool as Keep's request limiter reports it (arvados_*_requests{queue}). */
export interface QueueGauge {
  inUse: number
  waiting: number
  max: number
  maxQueued: number
}

export interface MetricsSources {
  mounts: () => readonly Mount[]
  worklists?: () => Record<string, WorklistCounters>
  /** Request pools by Keep's `queue` label: `api` (requests in general) and `write` (block writes, ours). */
  queues?: () => Record<string, QueueGauge>
  version?: string
}

/** Sum and count of request durations per method and status: Keep's `request_duration_seconds` summary. */
interface DurationSum {
  sum: number
  count: number
}

/**
 * One registry per keepstore (tests run several in one process). Gauges that
 * describe state (free bytes, worklist counters, Keep's volume counters) are
 * read at scrape time, so the request and I/O paths only add to plain numbers.
 *
 * Keep's own names (`arvados_keepstore_*`, `arvados_*_requests`,
 * `request_duration_seconds`) are exposed for the quantities both have, so
 * Keep dashboards work; `keepstore_*` names are only for what Keep lacks.
 */
export class KeepstoreMetrics {
  readonly registry = new Registry()
  private readonly requests: Counter<'route' | 'method' | 'status'>
  private readonly latency: Histogram<'route' | 'method'>
  private readonly bytesIn: Counter
  private readonly bytesOut: Counter
  /** method (lower case, as Keep labels it) → status → durations. */
  private readonly durations = new Map<string, Map<number, DurationSum>>()
  readonly pullBytes: Counter
  readonly pullFailures: Counter<'reason'>
  /** Worklist items that failed, by list and reason (the error code, e.g. KEEP_READ_ONLY). */
  readonly worklistFailures: Counter<'list' | 'reason'>
  readonly trashEmptied: Counter
  /** Scrubber: blocks checked, bytes read, corrupt copies found and quarantined, failures, per volume. */
  readonly scrubBlocks: Counter<'volume'>
  readonly scrubBytes: Counter<'volume'>
  readonly scrubCorrupt: Counter<'volume'>
  readonly scrubQuarantined: Counter<'volume'>
  readonly scrubErrors: Counter<'volume'>
  readonly scrubLastRun: Gauge

  constructor(sources: MetricsSources) {
    const registers = [this.registry]
    this.requests = new Counter({ name: 'keepstore_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'method', 'status'], registers })
    this.latency = new Histogram({
      name: 'keepstore_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['route', 'method'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    })
    this.bytesIn = new Counter({ name: 'keepstore_bytes_in_total', help: 'Block bytes received', registers })
    this.bytesOut = new Counter({ name: 'keepstore_bytes_out_total', help: 'Block and index bytes sent', registers })
    this.pullBytes = new Counter({ name: 'keepstore_pull_bytes_total', help: 'Bytes pulled from other keepstores', registers })
    this.pullFailures = new Counter({ name: 'keepstore_pull_failures_total', help: 'Failed pull attempts (one per source server) by reason', labelNames: ['reason'], registers })
    this.worklistFailures = new Counter({ name: 'keepstore_worklist_failures_total', help: 'Pull and trash items that failed, by reason', labelNames: ['list', 'reason'], registers })
    this.trashEmptied = new Counter({ name: 'keepstore_trash_emptied_total', help: 'Trashed blocks deleted for good', registers })
    const perVolume = { labelNames: ['volume'] as const, registers }
    this.scrubBlocks = new Counter({ name: 'keepstore_scrub_blocks_total', help: 'Blocks the scrubber checked', ...perVolume })
    this.scrubBytes = new Counter({ name: 'keepstore_scrub_bytes_total', help: 'Bytes the scrubber read and verified', ...perVolume })
    this.scrubCorrupt = new Counter({ name: 'keepstore_scrub_corrupt_total', help: 'Stored copies the scrubber found corrupt or not regular files', ...perVolume })
    this.scrubQuarantined = new Counter({ name: 'keepstore_scrub_quarantined_total', help: 'Corrupt copies moved to quarantine', ...perVolume })
    this.scrubErrors = new Counter({ name: 'keepstore_scrub_errors_total', help: 'Blocks the scrubber could not check or quarantine', ...perVolume })
    this.scrubLastRun = new Gauge({ name: 'keepstore_scrub_last_run_timestamp_seconds', help: 'When the last complete scrub pass ended', registers })
    new Gauge({
      name: 'keepstore_volume_free_bytes',
      help: 'Free bytes per volume',
      labelNames: ['volume'],
      registers,
      collect() {
        for (const m of sources.mounts()) this.set({ volume: m.uuid }, m.space().freeBytes)
      },
    })
    new Gauge({
      name: 'keepstore_worklist_items',
      help: 'Outcomes of the current list\'s items (queued and in progress: arvados_keepstore_*_queue_*_entries)',
      labelNames: ['list', 'state'],
      registers,
      collect() {
        for (const [list, c] of Object.entries(sources.worklists?.() ?? {})) {
          for (const state of ['done', 'failed', 'skipped'] as const) this.set({ list, state }, c[state])
        }
      },
    })
    this.registerKeepVolumeMetrics(sources)
    this.registerKeepQueueMetrics(sources)
    this.registry.registerMetric(requestDurationSummary(this.durations) as unknown as Metric)
    if (sources.version !== undefined) {
      new Gauge({ name: 'arvados_version_running', help: 'Indicated version is running.', labelNames: ['version'], registers }).set({ version: sources.version }, 1)
    }
  }

  observeRequest(route: string, method: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void {
    this.requests.inc({ route, method, status: String(status) })
    this.latency.observe({ route, method }, seconds)
    if (bytesIn) this.bytesIn.inc(bytesIn)
    if (bytesOut) this.bytesOut.inc(bytesOut)
    let byStatus = this.durations.get(method)
    if (!byStatus) this.durations.set(method, (byStatus = new Map()))
    let d = byStatus.get(status)
    if (!d) byStatus.set(status, (d = { sum: 0, count: 0 }))
    d.sum += seconds
    d.count++
  }

  /** Keep's volume counters (metrics.go, stats_ticker.go), one series per device_id. */
  private registerKeepVolumeMetrics(sources: MetricsSources): void {
    const registers = [this.registry]
    const byDevice = (): Map<string, VolumeStats[]> => {
      const out = new Map<string, VolumeStats[]>()
      // Two mounts on one device add up, as Keep's curried counters do.
      for (const m of sources.mounts()) out.set(m.deviceId, [...(out.get(m.deviceId) ?? []), m.volume.stats])
      return out
    }
    const counter = <L extends string>(name: string, help: string, label: L, values: (s: VolumeStats) => Array<[string, number]>): void => {
      new Counter({
        name,
        help,
        labelNames: ['device_id', label],
        registers,
        collect() {
          this.reset()
          for (const [device, stats] of byDevice()) {
            for (const s of stats) for (const [value, n] of values(s)) this.inc({ device_id: device, [label]: value } as Record<'device_id' | L, string>, n)
          }
        },
      })
    }
    counter('arvados_keepstore_volume_operations', 'Number of volume operations', 'operation', (s) => Object.entries(s.operations))
    counter('arvados_keepstore_volume_errors', 'Number of volume errors', 'error_type', (s) => Object.entries(s.errors))
    counter('arvados_keepstore_volume_io_bytes', 'Volume I/O traffic in bytes', 'direction', (s) => [['in', s.inBytes], ['out', s.outBytes]])
  }

  /** Keep's pull/trash queue gauges (pull_worker.go, trash_worker.go) and request-limiter gauges (httpserver). */
  private registerKeepQueueMetrics(sources: MetricsSources): void {
    const registers = [this.registry]
    for (const list of ['pull', 'trash'] as const) {
      const of = (): WorklistCounters | undefined => sources.worklists?.()[list]
      new Gauge({ name: `arvados_keepstore_${list}_queue_pending_entries`, help: `Number of queued ${list} requests`, registers, collect() { this.set(of()?.queued ?? 0) } })
      new Gauge({ name: `arvados_keepstore_${list}_queue_inprogress_entries`, help: `Number of ${list} requests in progress`, registers, collect() { this.set(of()?.in_progress ?? 0) } })
    }
    const gauge = (name: string, help: string, value: (q: QueueGauge) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['queue'],
        registers,
        collect() {
          for (const [queue, q] of Object.entries(sources.queues?.() ?? {})) this.set({ queue }, value(q))
        },
      })
    }
    gauge('arvados_concurrent_requests', 'Number of requests in progress', (q) => q.inUse)
    gauge('arvados_max_concurrent_requests', 'Maximum number of concurrent requests', (q) => q.max)
    gauge('arvados_max_queued_requests', 'Maximum number of queued requests', (q) => q.maxQueued)
    new Gauge({
      name: 'arvados_queued_requests',
      help: 'Number of requests in queue',
      labelNames: ['queue', 'priority'],
      registers,
      collect() {
        // One priority here; Keep's low/high are reported as 0 so its queries find every series.
        for (const [queue, q] of Object.entries(sources.queues?.() ?? {})) {
          this.set({ queue, priority: 'normal' }, q.waiting)
          this.set({ queue, priority: 'low' }, 0)
          this.set({ queue, priority: 'high' }, 0)
        }
      },
    })
  }
}

/**
 * `request_duration_seconds{code,method}` as Keep's httpserver exports it: a
 * summary without quantiles (only _sum and _count), method in lower case.
 * prom-client's Summary would feed a t-digest on every request; this one adds two numbers.
 */
function requestDurationSummary(durations: Map<string, Map<number, DurationSum>>): object {
  const name = 'request_duration_seconds'
  const help = 'Summary of request duration.'
  return {
    name,
    help,
    type: 'summary',
    aggregator: 'sum',
    async get() {
      const values: Array<{ metricName: string; labels: Record<string, string>; value: number }> = []
      for (const [method, byStatus] of durations) {
        for (const [status, d] of byStatus) {
          const labels = { code: String(status), method: method.toLowerCase() }
          values.push({ metricName: `${name}_sum`, labels, value: d.sum }, { metricName: `${name}_count`, labels, value: d.count })
        }
      }
      return { name, help, type: 'summary', aggregator: 'sum', values }
    },
  }
}
