import { setMaxListeners } from 'node:events'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { requireDatamanager, type Config, type DatamanagerConfig } from '../shared/config.js'
import { EXIT } from '../shared/cli.js'
import { isKeepError } from '../shared/errors.js'
import type { Logger } from '../shared/logger.js'
import type { MembershipView } from '../shared/membership.js'
import type { BalancePolicy } from './balance.js'
import { balancePass, type PassResult } from './balance-pass.js'
import { createTotals } from './balance-report.js'
import type { CollectionsSummary } from './collections.js'
import { clearTrashLists, commitChanges, type CommitOptions, type CommitTimings, type ServerCommit } from './commit.js'
import { openConfirmedRecords, type ConfirmedRecords, type ConfirmedTracker } from './confirmed.js'
import { writeDryRun } from './dry-run.js'
import { incrementalReport, keepState, planReads, readReferences, runFingerprint, type Keep, type ReferencesRead } from './incremental.js'
import { openIndexStore } from './index-store.js'
import { fetchMounts, type DatamanagerClient } from './indexes.js'
import type { Lock, LockHandle } from './lock.js'
import { createRunFence, type RunFence } from './fencing.js'
import { prefetchFullReads } from './prefetch.js'
import { planMembership, type MembershipPlan } from './membership-plan.js'
import { noProgress, type Progress } from './progress.js'
import { StoredReferencesDoubt } from './reference-source.js'
import { buildReport, summaryLine, writeReport, type ConfirmedReport, type IncrementalReport, type Outcome, type Report, type Timings } from './report.js'
import { checkMounts, checkSanity, type Refusal, type ServerMounts } from './sanity.js'
import { createSpill, type Spill } from './spill.js'
import { readRunState, topologyChanged, topologyKey, writeRunState, type RunState } from './state.js'
import { createTopology } from './topology.js'

/** Under `datamanager.stateDir`: each collection's confirmed replication after the last committed run. */
export const CONFIRMED_FILE = 'collections-confirmed.jsonl'

export interface RunOptions {
  config: Config
  /** Talks to keepstores with the admin token (a `KeepstoreClient`). */
  client: DatamanagerClient
  lock: Lock
  logger: Logger
  /** Milliseconds since the epoch (trash ages, report times); default `Date.now`. */
  now?: () => number
  /** Compute and report, send nothing; the lists are written under `<stateDir>/dry-run/`. */
  dryRun?: boolean
  /** Accept a drop of collections or referenced blocks beyond 10 % (the only refusal it overrides). */
  force?: boolean
  progress?: Progress
  /** Characters of reference lines buffered per spill file (tests make it tiny to exercise the spill). */
  referenceBufferChars?: number
  /** Retries of PUT /pull and PUT /trash. */
  commit?: Pick<CommitOptions, 'attempts' | 'retryDelayMs' | 'sleep'>
  /** Where a dry run prints what it would send; default stdout. */
  out?: NodeJS.WritableStream
  /** Collections of this many bytes or more are scanned in a worker thread (default 16 MiB; tests set 0 to use it always). */
  collectionsWorkerBytes?: number
  /** Prefixes are decided in worker threads from this many index lines on (default 1 M; tests set 0 to use them always). */
  parallelLines?: number
  /** Overrides `datamanager.runTimeout` (ms); tests make it tiny. */
  runTimeoutMs?: number
  /** `--full`: read every index and the collections in full, reusing nothing stored (the state is still kept for the next run). */
  full?: boolean
  /**
   * With `cluster.etcd`: who is live. A keepstore absent for
   * `datamanager.membershipSettle` is down: planned without, pulls only,
   * empty trash lists (PROTOCOL §8).
   */
  membership?: MembershipView
}

export interface RunResult {
  /** 0 done, 1 refused (or a list not delivered), 3 lock held (PROTOCOL §8). */
  exitCode: number
  /** Undefined only when the lock was held. */
  report: Report | undefined
}

/**
 * One datamanager run, phase by phase: lock → collect (mounts, collections,
 * indexes) → balance (block by block, merged in hash order) → sanity →
 * commit → report. Every edge is injected (clock, logger, HTTP client, lock),
 * so tests need no child process. Throws only for faults of the datamanager
 * itself (its state directory unwritable, a bug).
 */
export async function runDatamanager(options: RunOptions): Promise<RunResult> {
  const dm = requireDatamanager(options.config)
  await mkdir(dm.stateDir, { recursive: true })
  let handle: LockHandle | undefined
  try {
    handle = await options.lock.tryAcquire()
  } catch (err) {
    // No lock, no run (etcd unreachable): keepstores go on serving blocks without us.
    if (!isKeepError(err, 'KEEP_UNAVAILABLE')) throw err
    options.logger.error({ lock: options.lock.description }, `${err.message}: not starting`)
    return { exitCode: EXIT.locked, report: undefined }
  }
  if (handle === undefined) {
    options.logger.error({ lock: options.lock.description }, `another datamanager holds the lock ${options.lock.description}: not starting`)
    return { exitCode: EXIT.locked, report: undefined }
  }
  try {
    return await runLocked(options, dm, createRunFence(handle, options.logger))
  } finally {
    await handle.release()
  }
}

async function runLocked(options: RunOptions, dm: DatamanagerConfig, fence: RunFence | undefined): Promise<RunResult> {
  const { config, client, logger } = options
  const now = options.now ?? Date.now
  const progress = options.progress ?? noProgress
  const full = options.full ?? false
  const startedAt = now()
  const stateFile = path.join(dm.stateDir, 'last-run.json')
  const previous = await readRunState(stateFile, (reason) => logger.warn(`last-run state ignored: ${reason}`))
  const membership = await planFor(options, dm, previous)
  const servers = config.keepstores.filter((ks) => !membership?.down.includes(ks.uuid)).map((ks) => ({ uuid: ks.uuid, url: ks.url }))
  if (membership !== undefined && membership.down.length > 0) {
    logger.warn({ down: membership.down }, `keepstores down (absent from etcd for ${dm.membershipSettleMs} ms or more): planning without them; pulls only, trash lists empty`)
  }
  // The new holder's first step (PROTOCOL §4): a fenced empty trash list everywhere, before any index is read.
  let fencedFirst = false
  if (fence !== undefined && !options.dryRun) {
    const sent = await clearTrashLists(servers, { client, logger, ...options.commit, fence })
    fencedFirst = sent.every((r) => r.trash === 'sent')
  }
  const spill = await createSpill(path.join(dm.stateDir, 'spill'))
  const store = await openIndexStore(path.join(dm.stateDir, 'incremental'))
  if (store.invalid !== undefined) logger.warn({ reason: store.invalid }, `incremental state set aside (every index is read in full): ${store.invalid}`)
  // A dry run writes into the spill: the stored state never changes.
  const writer = store.createWriter(options.dryRun === true ? spill.dir : undefined)
  // What each collection holds, for collections-confirmed.jsonl: only a run that may commit needs it.
  const confirmed: ConfirmedRecords | undefined = options.dryRun ? undefined : await openConfirmedRecords(path.join(dm.stateDir, 'confirmed'))
  // runTimeout (keep-balance's BalanceTimeout): every read in flight is aborted at the deadline, and the run refuses.
  const runTimeoutMs = options.runTimeoutMs ?? dm.runTimeoutMs
  const deadline = new AbortController()
  const timer = setTimeout(() => deadline.abort(), runTimeoutMs)
  // A lost lock (or a 409) also stops the reads: nothing this run learns can be sent any more.
  const signal = fence === undefined ? deadline.signal : AbortSignal.any([deadline.signal, fence.signal])
  // Every index and prefix read in flight listens to it: dozens at once is expected, not a leak.
  setMaxListeners(1000, signal)
  let committed = false
  try {
    const timings: Timings = { collectionsMs: 0, balanceMs: 0, commitMs: 0 }
    const started = performance.now()
    progress.phase('reading collections', 0x10000)
    const readRefs = (again: boolean): Promise<ReferencesRead> =>
      readReferences({ config, dm, store, spill, full: full || again, progress, signal, confirmed, ...chunkOptions(options) })
    // The collections are read (in a worker thread when large) while the indexes are: neither waits for the other.
    const reading = readRefs(false).then((r) => {
      timings.collectionsMs = Math.round(performance.now() - started)
      return r
    })
    reading.catch(() => {}) // awaited below, on every path
    const serverMounts = await Promise.all(servers.map((s) => mountsOf(client, s, signal)))
    let refs: ReferencesRead | undefined
    // Balancing, as before, counts from here: reading the indexes is part of it.
    const mark = performance.now()
    const mountRefusals = checkMounts(serverMounts)
    const answered = serverMounts.filter((s) => s.mounts !== undefined)
    // PROTOCOL §8: servers or mounts changed → every trash list is cleared before any index is read.
    const layout = topologyKey(answered.map((s) => ({ uuid: s.uuid, url: s.url, mounts: s.mounts! })))
    let cleared = fencedFirst
    const earlyRefusals: Refusal[] = []
    if (!options.dryRun && !cleared && topologyChanged(previous.topology, layout)) {
      const clearStarted = performance.now()
      const sent = await clearTrashLists(answered, { client, logger, ...options.commit })
      timings.trashListsMs = Math.round(performance.now() - clearStarted)
      cleared = sent.every((r) => r.trash === 'sent')
      // keep-balance stops here too: an old list still queued could trash a copy the indexes are about to show.
      const missed = sent.filter((r) => r.trash !== 'sent').map((r) => r.server)
      if (missed.length > 0) {
        earlyRefusals.push({
          code: 'trash-not-cleared',
          message: `servers or mounts changed and ${missed.join(', ')} did not take the empty trash list sent before reading indexes`,
        })
      }
    }
    let pass: PassResult | undefined
    let fingerprint = ''
    if (!mountRefusals.some((r) => r.code === 'duplicate-mount') && !signal.aborted) {
      const topology = createTopology(answered.map((s) => ({ uuid: s.uuid, url: s.url, mounts: s.mounts! })))
      const policy = policyAt(now(), config)
      fingerprint = runFingerprint(answered.map((s) => ({ uuid: s.uuid, url: s.url, mounts: s.mounts! })), policy)
      const plans = await planReads({ client, servers: answered, store, writer, full, fingerprint, signal })
      const readStarted = performance.now()
      await prefetchFullReads({ client, servers: answered, plans, writer, signal })
      timings.indexReadMs = Math.round(performance.now() - readStarted)
      refs = await reading
      const passOnce = (): Promise<PassResult> =>
        balancePass({
          client,
          servers: answered,
          topology,
          policy,
          limits: { pullLimit: dm.pullLimit, trashLimit: dm.trashLimit },
          references: refs!.source,
          store,
          writer,
          plans,
          reuseOutcomes: !full && store.committed.meta.fingerprint === fingerprint,
          spill,
          lostFile: dm.lostBlocksFile,
          progress,
          logger,
          signal,
          ...(confirmed === undefined ? {} : { confirmed: confirmed.tracker }),
          ...(options.parallelLines === undefined ? {} : { parallelLines: options.parallelLines }),
        })
      try {
        pass = await passOnce()
      } catch (err) {
        if (!(err instanceof StoredReferencesDoubt)) throw err
        logger.warn(`${err.message}: reading the collections instead`)
        refs = await readRefs(true)
        pass = await passOnce()
      }
      await confirmed?.tracker.flush()
    }
    refs ??= await reading
    progress.stop()
    timings.balanceMs = Math.round(performance.now() - mark)
    const refusals = checkSanity({
      mounts: [...mountRefusals, ...earlyRefusals],
      indexes: pass?.indexes ?? [],
      collections: refs.summary,
      referencedBlocks: pass?.referencedBlocks ?? 0,
      previous,
      force: options.force ?? false,
    })
    // Checked before commit; a commit that starts finishes (each request has its own timeout).
    if (deadline.signal.aborted) {
      refusals.unshift({
        code: 'run-timeout',
        message: `the run took longer than datamanager.runTimeout (${runTimeoutMs} ms): reads stopped at the deadline`,
      })
    }
    clearTimeout(timer)
    const result = await finish(options, dm, {
      startedAt,
      previous,
      serverMounts,
      collections: refs.summary,
      pass,
      refusals,
      stateFile,
      timings,
      cleared,
      fence,
      membership,
      confirmed: confirmed?.tracker,
      keep: { store, writer, refs, fingerprint, generation: store.committed.meta.generation + 1 },
    })
    committed = result.report?.incremental.stateSaved === true
    return result
  } finally {
    clearTimeout(timer)
    progress.stop()
    if (!committed) await writer.discard().catch(() => {})
    await store.close()
    await confirmed?.close()
    await spill.destroy()
  }
}


interface Collected {
  startedAt: number
  previous: RunState
  serverMounts: ServerMounts[]
  collections: CollectionsSummary
  pass: PassResult | undefined
  refusals: Refusal[]
  stateFile: string
  timings: Timings
  /** Every answering server already took an empty trash list before the indexes were read. */
  cleared: boolean
  fence: RunFence | undefined
  membership: MembershipPlan | undefined
  keep: Keep
  confirmed: ConfirmedTracker | undefined
}

/** Sanity has spoken: commit (or refuse, or pretend), then report and remember. */
async function finish(options: RunOptions, dm: DatamanagerConfig, c: Collected): Promise<RunResult> {
  const { logger } = options
  const now = options.now ?? Date.now
  const dryRun = options.dryRun ?? false
  const refused = c.refusals.length > 0
  const answered = c.serverMounts.filter((s) => s.mounts !== undefined)
  const currentTopology = topologyKey(answered.map((s) => ({ uuid: s.uuid, url: s.url, mounts: s.mounts! })))
  const changed = topologyChanged(c.previous.topology, currentTopology)
  const down = c.membership?.down ?? []
  // Degraded (PROTOCOL §8): a keepstore is down, so pulls go out and every trash list is empty.
  const planned = c.pass?.changeSets.list() ?? []
  const changeSets = down.length === 0 ? planned : planned.map((set) => ({ ...set, trashes: [], trashBytes: 0, deferredTrashes: 0 }))
  if (refused) logger.warn({ refusals: c.refusals.map((r) => r.code) }, `refusing to pull or trash: ${c.refusals.map((r) => r.message).join('; ')}`)
  let commits: ServerCommit[] = []
  let outcome: Outcome
  const commitStarted = performance.now()
  const commitOptions = { client: options.client, logger, ...options.commit }
  if (dryRun) {
    await writeDryRun(path.join(dm.stateDir, 'dry-run'), changeSets, c.refusals, options.out ?? process.stdout)
    outcome = 'dry-run'
  } else if (c.fence?.signal.aborted) {
    outcome = 'fenced'
  } else if (refused) {
    commits = await clearTrashLists(answered, { ...commitOptions, fence: c.fence })
    outcome = 'refused'
  } else {
    const lists: CommitTimings = { pullListsMs: 0, trashListsMs: 0 }
    commits = await commitChanges(changeSets, { ...commitOptions, fence: c.fence, clearFirst: changed && !c.cleared, timings: lists })
    const delivered = commits.every((r) => r.pull === 'sent' && r.trash === 'sent')
    outcome = !delivered ? 'commit-failed' : down.length > 0 ? 'degraded' : 'committed'
    c.timings.pullListsMs = lists.pullListsMs
    c.timings.trashListsMs = (c.timings.trashListsMs ?? 0) + lists.trashListsMs
  }
  if (refused) c.timings.trashListsMs = (c.timings.trashListsMs ?? 0) + Math.round(performance.now() - commitStarted)
  if (c.fence?.signal.aborted && !dryRun) outcome = 'fenced'
  c.timings.commitMs = Math.round(performance.now() - commitStarted)
  // A degraded run delivered its lists too; its state is pinned to the servers it planned with (the fingerprint).
  const stateSaved = (outcome === 'committed' || outcome === 'degraded') && c.pass !== undefined ? await keepState(c.keep, c.pass.next, logger) : false
  // keep-balance's updateCollections: only after lists were sent, never for a refused or dry run.
  let confirmedFile: ConfirmedReport | undefined
  // A degraded run counts the copies of the keepstores it saw: lower, never higher, than with every one.
  if ((outcome === 'committed' || outcome === 'degraded') && c.confirmed !== undefined) {
    const started = performance.now()
    const file = path.join(dm.stateDir, CONFIRMED_FILE)
    const written = await c.confirmed.write(file)
    confirmedFile = { file, collections: written.collections }
    if (written.duplicates > 0) logger.warn({ duplicates: written.duplicates }, `${written.duplicates} collection uuid(s) carried by several records: confirmed 0`)
    c.timings.confirmedMs = Math.round(performance.now() - started)
  }
  let lostFile: string | undefined
  if (c.pass !== undefined && !refused && outcome !== 'fenced') {
    await c.pass.lost.commit()
    lostFile = dm.lostBlocksFile
  } else {
    await c.pass?.lost.abort()
  }
  const exitCode = outcome === 'fenced' ? EXIT.locked : refused || outcome === 'commit-failed' ? EXIT.refused : EXIT.ok
  const report = buildReport({
    startedAt: c.startedAt,
    finishedAt: now(),
    dryRun,
    forced: options.force ?? false,
    outcome,
    exitCode,
    refusals: c.refusals,
    topologyChanged: changed,
    collections: c.collections,
    referencedBlocks: c.pass?.referencedBlocks ?? 0,
    blocks: c.pass?.blocks ?? 0,
    indexLines: c.pass?.lines ?? 0,
    totals: c.pass?.totals ?? createTotals(),
    servers: c.serverMounts,
    indexes: c.pass?.indexes ?? [],
    changeSets,
    commits,
    lostFile,
    timings: c.timings,
    incremental: incrementalReport(c.keep.refs, c.pass, stateSaved),
    confirmed: confirmedFile,
    keep: c.pass?.totals.keep,
    down,
  })
  await writeReport(dm.reportFile, report)
  // A run that lost its lock leaves the state to the holder.
  if (!dryRun && outcome !== 'fenced') await writeRunState(c.stateFile, nextState(c, report, commits, currentTopology, options.config.keepstores.length))
  logger.info({ outcome, exitCode, report: dm.reportFile }, summaryLine(report))
  return { exitCode, report }
}

/** Counts move on only after a run that was not refused; the layout only once every configured server took its trash list. */
function nextState(
  c: Collected,
  report: Report,
  commits: readonly ServerCommit[],
  topology: Record<string, string[]>,
  configured: number,
): RunState {
  const lastSuccess =
    report.refusals.length === 0
      ? { at: report.finishedAt, collections: report.collections.read, referencedBlocks: report.referencedBlocks }
      : c.previous.lastSuccess
  const everyServer = commits.length === configured && commits.every((r) => r.trash === 'sent')
  const absentSince = c.membership?.absentSince ?? c.previous.absentSince
  return { lastSuccess, topology: everyServer ? topology : c.previous.topology, ...(absentSince === undefined ? {} : { absentSince }) }
}

/**
 * With a membership view, who is down now; undefined without etcd (every
 * configured keepstore is expected). The lock is held, so etcd answers: the
 * first listing is a moment away (unlisted, every state is unknown: nobody is down).
 */
async function planFor(options: RunOptions, dm: DatamanagerConfig, previous: RunState): Promise<MembershipPlan | undefined> {
  if (options.membership === undefined) return undefined
  await options.membership.ready(5000)
  return planMembership({ members: options.membership.members(), previous: previous.absentSince, settleMs: dm.membershipSettleMs, now: Date.now() })
}

async function mountsOf(client: DatamanagerClient, server: { uuid: string; url: string }, signal: AbortSignal): Promise<ServerMounts> {
  try {
    return { ...server, mounts: await fetchMounts(client, server, signal), error: undefined }
  } catch (err) {
    return { ...server, mounts: undefined, error: (err as Error).message }
  }
}

function policyAt(nowMs: number, config: Config): BalancePolicy {
  const nowNs = BigInt(Math.floor(nowMs)) * 1_000_000n
  return { trashCutoff: nowNs - BigInt(config.cluster.blobSigningTTLSeconds) * 1_000_000_000n }
}

function chunkOptions(options: RunOptions): { bufferChars?: number; workerBytes?: number } {
  return {
    ...(options.referenceBufferChars === undefined ? {} : { bufferChars: options.referenceBufferChars }),
    ...(options.collectionsWorkerBytes === undefined ? {} : { workerBytes: options.collectionsWorkerBytes }),
  }
}
