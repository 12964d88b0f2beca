import type { Category } from './balance.js'
import type { BalanceTotals, CategoryTotals, KeepStats } from './balance-report.js'
import type { ChangeSet } from './change-sets.js'
import type { CollectionsSummary, MalformedRecord } from './collections.js'
import type { ServerCommit } from './commit.js'
import type { IndexStatus } from './indexes.js'
import type { Refusal, ServerMounts } from './sanity.js'
import { writeFileAtomic } from './atomic-file.js'

/**
 * `committed`: lists sent; `refused`: only empty trash lists sent; `dry-run`: nothing sent; `commit-failed`: some list could not be delivered;
 * `degraded`: a keepstore is down (etcd), pull lists and only empty trash lists sent; `fenced`: the lock was lost or a newer holder's fence refused a list, nothing more sent (exit 3).
 */
export type Outcome = 'committed' | 'refused' | 'dry-run' | 'commit-failed' | 'degraded' | 'fenced'

export interface WorkReport {
  /** Items balance decided (before the per-server caps). */
  decided: number
  decidedBytes: number
  /** Items in lists the servers accepted (a dry run: would have sent). */
  sent: number
  sentBytes: number
  /** Items past `pullLimit` / `trashLimit`, left for a later run. */
  deferred: number
}

export interface MountReport {
  uuid: string
  deviceId: string
  storageClasses: string[]
  index: IndexStatus['state'] | 'not-fetched'
  lines: number
  error: string | undefined
  /** `full` or `incremental` (stored lines plus the prefixes whose digest changed). */
  read: IndexStatus['read'] | undefined
  /** Why a full read, when the run could have tried an incremental one. */
  fullReason: string | undefined
  /** Index bytes read from the keepstore (digests not counted). */
  bytesRead: number
  prefixesReread: number
}

export interface ServerReport {
  uuid: string
  url: string
  answered: boolean
  error: string | undefined
  mounts: MountReport[]
  pulls: { listed: number; deferred: number; outcome: ServerCommit['pull'] }
  trashes: { listed: number; deferred: number; outcome: ServerCommit['trash'] }
}

/**
 * Wall time of the phases, in ms. collections: mounts and collections read
 * and spilled (keep-balance's get_state, less the indexes); balance: indexes
 * read, merged and decided (its changeset_compute); commit: every list sent;
 * pullLists / trashLists: sending the pull lists, and the trash lists
 * (empty ones that clear stale work included); confirmed: writing
 * collections-confirmed.jsonl (its update_collections). A phase that did
 * not run is absent.
 */
export interface Timings {
  collectionsMs: number
  balanceMs: number
  /** Part of `balanceMs`: reading the indexes read in full into the store, before deciding (the collections are read meanwhile). */
  indexReadMs?: number
  commitMs: number
  pullListsMs?: number
  trashListsMs?: number
  confirmedMs?: number
}

/** `<stateDir>/collections-confirmed.jsonl` as this run wrote it. */
export interface ConfirmedReport {
  file: string
  collections: number
}

/** What an incremental run reused (README: incremental runs). */
export interface IncrementalReport {
  /** `reused`: the collection files were those of the last committed run, their references taken from the state. */
  collections: 'reused' | 'read'
  fullMounts: number
  incrementalMounts: number
  /** Index bytes read from keepstores, all mounts (digests not counted). */
  indexBytes: number
  prefixesReread: number
  /** Prefixes whose decisions were the last committed run's (lines, references and ages unchanged). */
  prefixesReused: number
  /** This run's lines, references and decisions were kept for the next run (only a committed run's are). */
  stateSaved: boolean
}

/** The JSON report of one run (`datamanager.reportFile`). */
export interface Report {
  startedAt: string
  finishedAt: string
  durationMs: number
  dryRun: boolean
  forced: boolean
  outcome: Outcome
  exitCode: number
  refusals: Refusal[]
  topologyChanged: boolean
  collections: { files: number; read: number; references: number; malformed: number; malformedRecords: MalformedRecord[] }
  referencedBlocks: number
  /** Distinct hashes seen in indexes or collections. */
  blocks: number
  indexLines: number
  categories: Record<Category, CategoryTotals>
  pulls: WorkReport
  trashes: WorkReport
  /** Bytes content addressing saves: each reference beyond a block's first would have stored it again. */
  dedupSavedBytes: number
  lost: { blocks: number; bytes: number; file: string | undefined }
  /** keep-balance's statistics (its `arvados_keep_*` gauges); absent when no balance pass ran. */
  keep: KeepStats | undefined
  /** Set when this run wrote collections-confirmed.jsonl (a committed run). */
  confirmed: ConfirmedReport | undefined
  timings: Timings
  incremental: IncrementalReport
  servers: ServerReport[]
  /** Configured keepstores this run planned without: down in etcd for `membershipSettle` (PROTOCOL §8). */
  down: string[]
}

export interface ReportInput {
  startedAt: number
  finishedAt: number
  dryRun: boolean
  forced: boolean
  outcome: Outcome
  exitCode: number
  refusals: Refusal[]
  topologyChanged: boolean
  collections: CollectionsSummary
  referencedBlocks: number
  blocks: number
  indexLines: number
  totals: BalanceTotals
  servers: readonly ServerMounts[]
  indexes: readonly IndexStatus[]
  changeSets: readonly ChangeSet[]
  commits: readonly ServerCommit[]
  /** Set when the lost-blocks file was (re)written by this run. */
  lostFile: string | undefined
  timings: Timings
  incremental: IncrementalReport
  confirmed?: ConfirmedReport | undefined
  /** The balance pass's keep-balance statistics, when a pass ran. */
  keep?: KeepStats | undefined
  down?: readonly string[]
}

export function buildReport(input: ReportInput): Report {
  const commitOf = (uuid: string): ServerCommit | undefined => input.commits.find((c) => c.server === uuid)
  const setOf = (uuid: string): ChangeSet | undefined => input.changeSets.find((s) => s.server.uuid === uuid)
  const delivered = (uuid: string, which: 'pull' | 'trash'): boolean =>
    input.outcome === 'dry-run' ? input.refusals.length === 0 : commitOf(uuid)?.[which] === 'sent' && input.refusals.length === 0
  const work = (which: 'pull' | 'trash'): WorkReport => {
    const out: WorkReport = { decided: 0, decidedBytes: 0, sent: 0, sentBytes: 0, deferred: 0 }
    const totals = which === 'pull' ? input.totals.pulls : input.totals.trashes
    out.decided = totals.items
    out.decidedBytes = totals.bytes
    for (const set of input.changeSets) {
      out.deferred += which === 'pull' ? set.deferredPulls : set.deferredTrashes
      if (!delivered(set.server.uuid, which)) continue
      out.sent += which === 'pull' ? set.pulls.length : set.trashes.length
      out.sentBytes += which === 'pull' ? set.pullBytes : set.trashBytes
    }
    return out
  }
  const lost = input.totals.categories.lost
  const c = input.collections
  return {
    startedAt: new Date(input.startedAt).toISOString(),
    finishedAt: new Date(input.finishedAt).toISOString(),
    durationMs: input.finishedAt - input.startedAt,
    dryRun: input.dryRun,
    forced: input.forced,
    outcome: input.outcome,
    exitCode: input.exitCode,
    refusals: input.refusals,
    topologyChanged: input.topologyChanged,
    collections: { files: c.files, read: c.collections, references: c.references, malformed: c.malformed, malformedRecords: c.malformedRecords },
    referencedBlocks: input.referencedBlocks,
    blocks: input.blocks,
    indexLines: input.indexLines,
    categories: input.totals.categories,
    pulls: work('pull'),
    trashes: work('trash'),
    dedupSavedBytes: input.totals.dedupSavedBytes,
    lost: { blocks: lost.blocks, bytes: lost.bytes, file: input.lostFile },
    keep: input.keep,
    confirmed: input.confirmed,
    timings: input.timings,
    incremental: input.incremental,
    down: [...(input.down ?? [])],
    servers: input.servers.map((s) => {
      const set = setOf(s.uuid)
      const commit = commitOf(s.uuid)
      return {
        uuid: s.uuid,
        url: s.url,
        answered: s.mounts !== undefined,
        error: s.error,
        mounts: (s.mounts ?? []).map((m) => {
          const index = input.indexes.find((i) => i.server === s.uuid && i.mount === m.uuid)
          return {
            uuid: m.uuid,
            deviceId: m.deviceId,
            storageClasses: m.storageClasses,
            index: index?.state ?? 'not-fetched',
            lines: index?.lines ?? 0,
            error: index?.error,
            read: index?.read,
            fullReason: index?.fullReason,
            bytesRead: index?.bytes ?? 0,
            prefixesReread: index?.prefixesReread ?? 0,
          }
        }),
        pulls: { listed: set?.pulls.length ?? 0, deferred: set?.deferredPulls ?? 0, outcome: commit?.pull ?? 'not-sent' },
        trashes: { listed: set?.trashes.length ?? 0, deferred: set?.deferredTrashes ?? 0, outcome: commit?.trash ?? 'not-sent' },
      }
    }),
  }
}

export async function writeReport(file: string, report: Report): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(report, null, 2)}\n`)
}

const SHORT: Record<Category, string> = {
  ok: 'ok',
  misplaced: 'misplaced',
  'under-replicated': 'under',
  'over-replicated': 'over',
  lost: 'lost',
  garbage: 'garbage',
  'young-unreferenced': 'young',
}

/** The one summary log line of a run. */
export function summaryLine(report: Report): string {
  const cats = (Object.keys(SHORT) as Category[]).map((c) => `${SHORT[c]} ${report.categories[c].blocks}`).join(', ')
  const seconds = (report.durationMs / 1000).toFixed(1)
  return (
    `${report.outcome}: ${report.blocks} blocks (${cats}), ${report.collections.read} collections; ` +
    `pulls ${report.pulls.sent} sent ${report.pulls.deferred} deferred; ` +
    `trashes ${report.trashes.sent} sent ${report.trashes.deferred} deferred; ${seconds} s`
  )
}
