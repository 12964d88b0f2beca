import { EMPTY_SHA256, PREFIX_COUNT, sha256hex } from '../shared/index-digests.js'
import type { Logger } from '../shared/logger.js'
import type { BalancePolicy } from './balance.js'
import { createTotals, type BalanceTotals } from './balance-report.js'
import { ChangeSets, type ChangeSetLimits } from './change-sets.js'
import { createAtomicWriter, type AtomicWriter } from './atomic-file.js'
import { openStoredIndex, type ReadPlan } from './index-reuse.js'
import { EMPTY_OUTCOME, EMPTY_RECORD, type IndexStore, type OutcomeRecord, type StoredRecord, type StoreState, type StoreWriter } from './index-store.js'
import { openFullIndex, spillIndex, type DatamanagerClient, type IndexStatus, type PrefixSource, type SourceGroup } from './indexes.js'
import { mergePrefix } from './merge.js'
import { CHUNK, DecidePool, ParallelDoubt } from './decide-pool.js'
import type { ConfirmedTracker } from './confirmed.js'
import { applyOutcome, indexTopology, OutcomeBuilder, windowHolds, type RunAccumulator, type TopologyIndex } from './outcomes.js'
import type { Progress } from './progress.js'
import type { ReferencesOnDisk, ReferenceSource } from './reference-source.js'
import type { ServerMounts } from './sanity.js'
import type { Spill } from './spill.js'
import type { Topology } from './topology.js'

export interface PassInput {
  client: DatamanagerClient
  /** Servers that answered `GET /mounts` (their `mounts` set). */
  servers: readonly ServerMounts[]
  topology: Topology
  policy: BalancePolicy
  limits: ChangeSetLimits
  references: ReferenceSource
  /** The last committed run's state (read) and this run's records (written through `writer`). */
  store: IndexStore
  writer: StoreWriter
  /** How each mount (`server/mount`) is read; a mount without a plan is read in full. */
  plans: ReadonlyMap<string, ReadPlan>
  /** Decisions of unchanged prefixes may be taken from the last committed run (same servers, mounts, policy and code). */
  reuseOutcomes: boolean
  spill: Spill
  /** Target of the lost-blocks file; the pass writes its temporary file, the run commits or drops it. */
  lostFile: string
  progress: Progress
  logger: Logger
  /** The run's deadline: aborts every index read in flight and stops the pass (the run then refuses). */
  signal?: AbortSignal
  /** Told each referenced block's held replication (for `collections-confirmed.jsonl`); absent in a dry run. */
  confirmed?: ConfirmedTracker
  /**
   * Prefixes are decided in worker threads when every mount's lines are in
   * the store, no decision can be reused, and the mounts hold at least this
   * many lines (default {@link PARALLEL_LINES}; tests set 0). Infinity: never.
   */
  parallelLines?: number
}

/** Fewer lines are decided on the main thread: starting the worker threads costs ~0.1 s of CPU. */
export const PARALLEL_LINES = 1_000_000
/**
 * More lines are decided on the main thread too, until the threads' memory is bounded: each holds
 * a 16-prefix chunk's references and results, which grow with the cluster (at 100 M blocks × 3 the
 * threaded run passed 1 GiB RSS; at 10 M × 3 it peaked at 667 MiB).
 */
export const PARALLEL_MAX_LINES = 60_000_000

export interface PassResult {
  totals: BalanceTotals
  changeSets: ChangeSets
  indexes: IndexStatus[]
  referencedBlocks: number
  blocks: number
  lines: number
  lost: AtomicWriter
  /** Prefixes whose decisions were those of the last committed run. */
  reusedPrefixes: number
  /** What to keep for the next run if this one commits (meta to be completed by the run). */
  next: Omit<StoreState, 'meta'> & { mounts: string[] }
}

/**
 * Decides every block, prefix by prefix (`000`…`fff`): each mount's lines
 * of the prefix (read in full, or stored and checked against the digests),
 * merged with the prefix's references, through `balanceBlock` into an
 * outcome that is stored and added to the run. A prefix whose lines,
 * references and replica ages relative to the cutoff are all those of the
 * last committed run takes that run's outcome instead, read from the store.
 * An index found unsorted, or an incremental mount found doubtful, stops
 * the pass; it then starts over with that index spilled to `level`, or that
 * mount read in full.
 */
export async function balancePass(input: PassInput): Promise<PassResult> {
  const spilled = new Set<string>()
  const forcedFull = new Map<string, string>()
  let parallel = true
  for (let attempt = 0; ; attempt++) {
    const doubted: Array<{ key: string; reason: string }> = []
    let result: PassResult
    try {
      result = await onePass(input, spilled, forcedFull, doubted, attempt, parallel)
    } catch (err) {
      if (!(err instanceof ParallelDoubt)) throw err
      // The main thread meets the same doubt and handles it as it always has (a full read, or the collections).
      input.logger.warn({ reason: err.message }, `${err.message}: deciding on the main thread instead`)
      parallel = false
      continue
    }
    if (input.signal?.aborted) return result
    const unsorted = result.indexes.filter((i) => i.state === 'unsorted')
    if (unsorted.length === 0 && doubted.length === 0) return result
    await result.lost.abort()
    for (const i of unsorted) {
      spilled.add(`${i.server}/${i.mount}`)
      input.logger.warn({ server: i.server, mount: i.mount }, 'index not sorted: spilling it to disk and starting over')
    }
    for (const d of doubted) {
      forcedFull.set(d.key, d.reason)
      input.logger.warn({ mount: d.key, reason: d.reason }, `stored index of ${d.key} in doubt (${d.reason}): reading it in full and starting over`)
    }
  }
}

async function onePass(
  input: PassInput,
  spilled: ReadonlySet<string>,
  forcedFull: ReadonlyMap<string, string>,
  doubted: Array<{ key: string; reason: string }>,
  attempt: number,
  parallel: boolean,
): Promise<PassResult> {
  const { policy, progress, store, writer } = input
  const ac = new AbortController()
  const stop = (): void => ac.abort()
  input.signal?.addEventListener('abort', stop, { once: true })
  if (input.signal?.aborted) ac.abort()
  const sources = await openSources(input, spilled, forcedFull, doubted, attempt, ac)
  const index = indexTopology(input.topology)
  // Only the last pass's blocks count (a pass that starts over forgets what the earlier one noted).
  input.confirmed?.startBlocks()
  const acc: RunAccumulator = {
    totals: createTotals(),
    changeSets: new ChangeSets(input.topology.servers, input.limits),
    lost: await createAtomicWriter(input.lostFile),
    confirmed: input.confirmed,
    blocks: 0,
    lines: 0,
    referencedBlocks: 0,
  }
  const committed = store.committed
  const storable = sources.filter((s) => s.storable)
  // Per source (same order): this run's records, the last committed run's.
  const kept = sources.map((s) => (s.storable ? new Array<StoredRecord>(PREFIX_COUNT) : undefined))
  const previousLines = sources.map((s) => committed.lines.get(s.mount))
  const unchanged = (i: number): boolean => {
    for (const s of sources) if (!s.unchanged(i)) return false
    return true
  }
  const refs = new Array<StoredRecord>(PREFIX_COUNT)
  const outcomes = new Array<OutcomeRecord>(PREFIX_COUNT)
  const reuse = input.reuseOutcomes && committed.outcomes !== undefined && sources.every((s) => s.status.read === 'incremental')
  let reusedPrefixes = 0
  const pool = parallel && !reuse ? openPool(input, sources) : undefined
  const referenceReader = pool === undefined ? input.references.open() : undefined
  progress.phase('balancing', PREFIX_COUNT)
  try {
    for (let i = 0; i < PREFIX_COUNT && !ac.signal.aborted; i++) {
      if ((i & 63) === 0) progress.update(i, `prefix ${i}/${PREFIX_COUNT}, ${acc.blocks} blocks`)
      if (pool !== undefined) {
        const d = await pool.decision(i)
        const previousRefs = committed.refs?.[i]
        if (d.refsText === undefined) refs[i] = (input.references.where as Extract<ReferencesOnDisk, { kind: 'stored' }>).records[i]!
        else if (previousRefs !== undefined && previousRefs.sha256 === d.refsSha && previousRefs.count === d.refsCount) refs[i] = previousRefs
        else refs[i] = append(writer, d.refsText, d.refsCount, d.refsSha)
        for (let k = 0; k < sources.length; k++) if (kept[k] !== undefined) kept[k]![i] = sources[k]!.records![i]!
        if (d.outcome === undefined) {
          outcomes[i] = EMPTY_OUTCOME
          continue
        }
        outcomes[i] = { ...append(writer, d.outcome, 0, sha256hex(d.outcome)), maxOld: d.maxOld, minYoung: d.minYoung }
        await applyOutcome(d.outcome, acc, index)
        const draining = writer.drain()
        if (draining !== undefined) await draining
        continue
      }
      // Most prefixes of a small cluster are empty, and most of a large one's unchanged: no promise unless needed.
      const taken = referenceReader!.take(i)
      const references = taken instanceof Promise ? await taken : taken
      refs[i] = references.record ?? append(writer, references.text!, references.count, references.sha256)
      if (reuse && references.unchanged && unchanged(i)) {
        const previous = committed.outcomes![i]!
        const reusing = windowHolds(previous, policy.trashCutoff) && (previous.length === 0 ? reuseOutcome(previous, i, '') : reuseStored(previous, i))
        if (reusing === true || (reusing !== false && (await reusing))) {
          reusedPrefixes++
          continue
        }
      }
      const groups = new Array<SourceGroup>(sources.length)
      let waits: Array<Promise<unknown>> | undefined
      for (let k = 0; k < sources.length; k++) {
        const g = sources[k]!.take(i)
        if (g instanceof Promise) (waits ??= []).push(g.then((v) => (groups[k] = v)))
        else groups[k] = g
      }
      if (waits !== undefined) await Promise.all(waits)
      if (ac.signal.aborted) break
      let lineCount = 0
      for (let k = 0; k < sources.length; k++) {
        const g = groups[k]!
        lineCount += g.entries.length
        const mountLines = kept[k]
        if (mountLines !== undefined) mountLines[i] = g.record ?? keepLines(writer, g.bytes!, g.entries.length, previousLines[k]?.[i])
      }
      if (lineCount === 0 && references.count === 0) {
        outcomes[i] = EMPTY_OUTCOME
        continue
      }
      const builder = new OutcomeBuilder(index, policy)
      const joined = references.count === 0 ? undefined : await references.refs()
      mergePrefix(
        groups.map((g, k) => ({ server: sources[k]!.server, mount: sources[k]!.mount, entries: g.entries })),
        joined,
        (block, reference) => builder.visit(block, reference),
      )
      const text = builder.text()
      outcomes[i] = { ...append(writer, text, 0, sha256hex(text)), maxOld: builder.maxOld, minYoung: builder.minYoung }
      await applyOutcome(text, acc, index)
      const draining = writer.drain()
      if (draining !== undefined) await draining
    }
    await Promise.all(sources.map((s) => s.finish()))
  } catch (err) {
    await acc.lost.abort()
    throw err
  } finally {
    input.signal?.removeEventListener('abort', stop)
    await referenceReader?.close()
    await pool?.close()
  }
  return {
    totals: acc.totals,
    changeSets: acc.changeSets,
    indexes: sources.map((s) => s.status),
    referencedBlocks: acc.referencedBlocks,
    blocks: acc.blocks,
    lines: acc.lines,
    lost: acc.lost,
    reusedPrefixes,
    next: {
      lines: new Map(sources.flatMap((s, k) => (kept[k] === undefined ? [] : [[s.mount, kept[k]!] as const]))),
      refs,
      outcomes,
      mounts: storable.map((s) => `${s.server}/${s.mount}`),
    },
  }

  /** Takes prefix `i`'s outcome from the last committed run (its `text`); the caller checked everything else. */
  function reuseOutcome(previous: OutcomeRecord, i: number, text: string): true | Promise<true> {
    for (let k = 0; k < sources.length; k++) if (kept[k] !== undefined) kept[k]![i] = previousLines[k]![i]!
    outcomes[i] = previous
    return text === '' ? true : applyOutcome(text, acc, index).then(() => true)
  }

  /** {@link reuseOutcome} of a stored outcome whose bytes check out; false when they do not. */
  async function reuseStored(previous: OutcomeRecord, i: number): Promise<boolean> {
    const bytes = await store.read(previous)
    if (sha256hex(bytes) !== previous.sha256) return false
    return reuseOutcome(previous, i, bytes.toString('utf8'))
  }
}

/** A pool deciding in worker threads, when the pass may use one (see {@link PassInput.parallelLines}). */
function openPool(input: PassInput, sources: readonly PrefixSource[]): DecidePool | undefined {
  const where = input.references.where
  if (where === undefined || (where.kind === 'spill' && where.files.length !== PREFIX_COUNT / CHUNK)) return undefined
  if (sources.length === 0 || !sources.every((s) => s.records !== undefined && s.storable)) return undefined
  let lines = 0
  for (const s of sources) for (const r of s.records!) lines += r.count
  if (lines < (input.parallelLines ?? PARALLEL_LINES) || lines > PARALLEL_MAX_LINES) return undefined
  const servers = input.servers.map((s) => ({ uuid: s.uuid, url: s.url, mounts: s.mounts! }))
  return new DecidePool(
    { servers, policy: input.policy, sources: sources.map((s) => [s.server, s.mount] as const) },
    sources.map((s) => s.records!),
    where,
    input.store.locate,
  )
}

async function openSources(
  input: PassInput,
  spilled: ReadonlySet<string>,
  forcedFull: ReadonlyMap<string, string>,
  doubted: Array<{ key: string; reason: string }>,
  attempt: number,
  ac: AbortController,
): Promise<PrefixSource[]> {
  const sources: PrefixSource[] = []
  let n = 0
  for (const server of input.servers) {
    for (const mount of server.mounts ?? []) {
      const key = `${server.uuid}/${mount.uuid}`
      const plan: ReadPlan = forcedFull.has(key)
        ? { read: 'full', reason: forcedFull.get(key)!, bytes: 0 }
        : (input.plans.get(key) ?? { read: 'full', reason: 'no stored index', bytes: 0 })
      const stored = input.store.committed.lines.get(mount.uuid)
      if (spilled.has(key)) {
        const db = await input.spill.open(`index-${attempt}-${n++}`)
        sources.push(await spillIndex(input.client, server, mount.uuid, db, { signal: ac.signal }))
      } else if (plan.read === 'prefetched') {
        // Read in full already; every prefix is new to this run (nothing is "unchanged": no decision is reused).
        const onDoubt = (reason: string): void => {
          doubted.push({ key, reason })
          ac.abort()
        }
        const reread = new Map(plan.records.map((r, i) => [i, r] as const))
        sources.push(openStoredIndex(server, mount.uuid, { read: 'incremental', status: plan.status, reread }, plan.records, input.store.read, onDoubt))
      } else if (plan.read === 'incremental' && stored !== undefined) {
        const onDoubt = (reason: string): void => {
          doubted.push({ key, reason })
          ac.abort()
        }
        sources.push(openStoredIndex(server, mount.uuid, plan, stored, input.store.read, onDoubt))
      } else {
        const reason = plan.read === 'full' ? plan.reason : 'no stored index'
        const source = openFullIndex(input.client, server, mount.uuid, { signal: ac.signal, onUnsorted: () => ac.abort(), fullReason: reason })
        source.status.bytes = plan.read === 'full' ? plan.bytes : 0
        sources.push(source)
      }
    }
  }
  return sources
}

function append(writer: StoreWriter, text: string, count: number, sha256: string): StoredRecord {
  return text === '' ? { ...EMPTY_RECORD, count, sha256 } : writer.append(Buffer.from(text, 'utf8'), count, sha256)
}

/** Lines just read in full: the stored record when they are the same bytes, else a new one. */
function keepLines(writer: StoreWriter, bytes: Buffer, count: number, previous: StoredRecord | undefined): StoredRecord {
  const sha256 = bytes.length === 0 ? EMPTY_SHA256 : sha256hex(bytes)
  if (previous !== undefined && previous.sha256 === sha256 && previous.count === count) return previous
  return writer.append(bytes, count, sha256)
}
