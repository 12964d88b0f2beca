import { Counter, Gauge, Registry, Summary } from 'prom-client'
import { CATEGORIES } from './balance.js'
import type { BlocksBytes, KeepStats } from './balance-report.js'
import type { Report } from './report.js'

/**
 * keep-balance's gauges (services/keep-balance/metrics.go): name → help.
 * Each is exported as `arvados_keep_<name>_blocks`, `_bytes` and `_replicas`.
 */
const BLOCKS_N_BYTES: ReadonlyArray<[keyof KeepStats & string, string]> = [
  ['total', 'current backend storage usage'],
  ['garbage', 'garbage (unreferenced, old)'],
  ['transient', 'transient (unreferenced, new)'],
  ['overreplicated', 'overreplicated'],
  ['underreplicated', 'underreplicated'],
  ['unachievable', 'unachievable'],
  ['balanced', 'optimally balanced'],
  ['desired', 'desired'],
  ['lost', 'lost'],
]
const SUBS = ['blocks', 'bytes', 'replicas'] as const
const STATUSES = ['needed', 'unneeded', 'pulling', 'unachievable'] as const

/** keep-balance's phase timers (`bal.time(name, help)`), `arvados_keepbalance_<name>_seconds`, and where ours come from. */
const PHASES: ReadonlyArray<[string, string, (r: Report) => number | undefined]> = [
  ['sweep', 'wall clock time to run one full sweep', (r) => r.durationMs],
  ['get_state', 'wall clock time to get current state', (r) => r.timings.collectionsMs],
  ['changeset_compute', 'wall clock time to compute changesets', (r) => r.timings.balanceMs],
  ['send_pull_lists', 'wall clock time to send pull lists', (r) => r.timings.pullListsMs],
  ['send_trash_lists', 'wall clock time to send trash lists', (r) => r.timings.trashListsMs],
  ['update_collections', 'wall clock time to update collections', (r) => r.timings.confirmedMs],
]

type Scalar = 'dedup_byte_ratio' | 'dedup_block_ratio' | 'collection_bytes' | 'referenced_bytes' | 'reference_count' | 'referenced_blocks'
const SCALARS: ReadonlyArray<[Scalar, string]> = [
  ['dedup_byte_ratio', 'deduplication ratio, bytes referenced / bytes stored'],
  ['dedup_block_ratio', 'deduplication ratio, blocks referenced / blocks stored'],
  ['collection_bytes', 'total apparent size of all collections'],
  ['referenced_bytes', 'total size of unique referenced blocks'],
  ['reference_count', 'block references in all collections'],
  ['referenced_blocks', 'blocks referenced by any collection'],
]
const ENTRIES: ReadonlyArray<[string, string, (r: Report) => number]> = [
  ['pull_entries_sent_count', 'total entries sent in pull lists', (r) => r.pulls.sent],
  ['pull_entries_deferred_count', 'total entries deferred (not sent) in pull lists', (r) => r.pulls.deferred],
  ['trash_entries_sent_count', 'total entries sent in trash lists', (r) => r.trashes.sent],
  ['trash_entries_deferred_count', 'total entries deferred (not sent) in trash lists', (r) => r.trashes.deferred],
]

/**
 * The datamanager's Prometheus metrics, in a registry of its own, set from
 * each run's report. keep-balance's own (`arvados_keep_*` gauges,
 * `arvados_keepbalance_*_seconds` summaries) with its names, labels and
 * types, so its dashboards and alerts work; `datamanager_*` only for what
 * keep-balance has no metric for.
 */
export class DatamanagerMetrics {
  readonly registry = new Registry()
  private readonly runs: Counter<'outcome'>
  private readonly refusals: Counter<'reason'>
  private readonly blocks: Gauge<'category'>
  private readonly bytes: Gauge<'category'>
  private readonly decided: Gauge<'list'>
  private readonly collections: Gauge
  private readonly confirmed: Gauge
  private readonly lastRun: Gauge
  private readonly lastExit: Gauge
  private readonly keep = new Map<string, Gauge>()
  private readonly histogram: Gauge<'replicas'>
  private readonly usage = new Map<string, Gauge<'storage_class' | 'status'>>()
  private readonly phases = new Map<string, Summary>()

  constructor() {
    const registers = [this.registry]
    for (const [name, help] of BLOCKS_N_BYTES) {
      for (const sub of SUBS) this.keep.set(`${name}_${sub}`, new Gauge({ name: `arvados_keep_${name}_${sub}`, help: `${sub} of ${help}`, registers }))
    }
    for (const [name, help] of [...SCALARS, ...ENTRIES]) this.keep.set(name, new Gauge({ name: `arvados_keep_${name}`, help, registers }))
    this.histogram = new Gauge({
      name: 'arvados_keep_replicated_block_count',
      help: 'blocks with indicated number of replicas at last count',
      labelNames: ['replicas'],
      registers,
    })
    for (const sub of SUBS) {
      this.usage.set(
        sub,
        new Gauge({ name: `arvados_keep_usage_${sub}`, help: 'stored in indicated storage class', labelNames: ['storage_class', 'status'], registers }),
      )
    }
    // keep-balance's summaries have no quantiles (Go's default): only _sum and _count.
    for (const [name, help] of PHASES) {
      this.phases.set(name, new Summary({ name: `arvados_keepbalance_${name}_seconds`, help, percentiles: [], registers }))
    }
    this.runs = new Counter({ name: 'datamanager_runs_total', help: 'Runs by outcome', labelNames: ['outcome'], registers })
    this.refusals = new Counter({ name: 'datamanager_refusals_total', help: 'Refused runs by reason', labelNames: ['reason'], registers })
    this.blocks = new Gauge({ name: 'datamanager_blocks', help: 'Blocks per category of the report at the last run', labelNames: ['category'], registers })
    this.bytes = new Gauge({ name: 'datamanager_bytes', help: 'Bytes per category of the report at the last run (each block once)', labelNames: ['category'], registers })
    this.decided = new Gauge({
      name: 'datamanager_list_items_decided',
      help: 'Pull and trash items the last run decided, before pullLimit / trashLimit',
      labelNames: ['list'],
      registers,
    })
    this.collections = new Gauge({ name: 'datamanager_collections', help: 'Collections read at the last run', registers })
    this.confirmed = new Gauge({ name: 'datamanager_collections_confirmed', help: 'Collections written to collections-confirmed.jsonl by the last committed run', registers })
    this.lastRun = new Gauge({ name: 'datamanager_last_run_timestamp_seconds', help: 'When the last run finished', registers })
    this.lastExit = new Gauge({ name: 'datamanager_last_run_exit_code', help: 'Exit code of the last run (0 done, 1 refused)', registers })
  }

  observe(report: Report): void {
    this.runs.inc({ outcome: report.outcome })
    for (const r of report.refusals) this.refusals.inc({ reason: r.code })
    for (const c of CATEGORIES) {
      this.blocks.set({ category: c }, report.categories[c].blocks)
      this.bytes.set({ category: c }, report.categories[c].bytes)
    }
    this.decided.set({ list: 'pull' }, report.pulls.decided)
    this.decided.set({ list: 'trash' }, report.trashes.decided)
    this.collections.set(report.collections.read)
    if (report.confirmed !== undefined) this.confirmed.set(report.confirmed.collections)
    this.lastRun.set(Date.parse(report.finishedAt) / 1000)
    this.lastExit.set(report.exitCode)
    for (const [name, , of] of PHASES) {
      const ms = of(report)
      if (ms !== undefined) this.phases.get(name)!.observe(ms / 1000)
    }
    // keep-balance sets its gauges once a run has computed its changes, refused later or not; a run
    // refused before (an index or keepstore missing) leaves the last values, as keep-balance's would.
    if (report.keep !== undefined && !report.refusals.some((r) => PARTIAL.has(r.code))) this.observeKeep(report, report.keep)
  }

  /** A run that found the lock held. */
  observeLocked(): void {
    this.runs.inc({ outcome: 'locked' })
  }

  private observeKeep(report: Report, s: KeepStats): void {
    for (const [name] of BLOCKS_N_BYTES) {
      const v = s[name] as BlocksBytes
      for (const sub of SUBS) this.keep.get(`${name}_${sub}`)!.set(v[sub])
    }
    const scalars: Record<Scalar, number> = {
      dedup_byte_ratio: s.referencedBytes === 0 ? 0 : s.collectionBytes / s.referencedBytes,
      dedup_block_ratio: s.referencedBlocks === 0 ? 0 : s.referenceCount / s.referencedBlocks,
      collection_bytes: s.collectionBytes,
      referenced_bytes: s.referencedBytes,
      reference_count: s.referenceCount,
      referenced_blocks: s.referencedBlocks,
    }
    for (const [name] of SCALARS) this.keep.get(name)!.set(scalars[name])
    for (const [name, , of] of ENTRIES) this.keep.get(name)!.set(of(report))
    const h = s.replicationHistogram
    for (let n = 0; n < h.length; n++) this.histogram.set({ replicas: String(n) }, h[n]!)
    // As keep-balance: zeros above the highest count, so a gauge of a past run's higher count does not linger.
    for (let n = h.length; n < h.length + 4 || n < h.length * 2; n++) this.histogram.set({ replicas: String(n) }, 0)
    for (const [cls, stats] of Object.entries(s.classes)) {
      for (const status of STATUSES) {
        for (const sub of SUBS) this.usage.get(sub)!.set({ storage_class: cls, status }, stats[status][sub])
      }
    }
  }
}

/** Refusals after which the statistics describe part of the cluster only: they are not exported. */
const PARTIAL = new Set(['keepstore-unavailable', 'duplicate-mount', 'index-incomplete', 'index-line-too-long', 'run-timeout', 'trash-not-cleared'])

