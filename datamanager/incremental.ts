import { readdirSync, readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { sha256hex } from '../shared/index-digests.js'
import type { Logger } from '../shared/logger.js'
import type { PassResult } from './balance-pass.js'
import type { IncrementalReport } from './report.js'
import type { Config, DatamanagerConfig } from '../shared/config.js'
import type { BalancePolicy } from './balance.js'
import { digestCollections, stampCollections } from './collections-digest.js'
import { listCollectionFiles, scanCollections, type CollectionSink, type CollectionsSummary } from './collections.js'
import { scanCollectionsInWorker } from './collections-thread.js'
import type { ConfirmedRecords } from './confirmed.js'
import { planRead, type ReadPlan } from './index-reuse.js'
import { STORE_VERSION, type CollectionsDigest, type IndexStore, type StoreWriter } from './index-store.js'
import type { DatamanagerClient } from './indexes.js'
import type { Progress } from './progress.js'
import { spilledReferences, storedReferences, type ReferenceSource } from './reference-source.js'
import { createReferenceSpill } from './references.js'
import type { ServerMounts } from './sanity.js'
import type { Spill } from './spill.js'
import type { MountInfo } from './topology.js'

/**
 * The compiled code that turns index lines and references into decisions:
 * a stored outcome is reused only by the code that made it.
 */
const CODE_DIGEST = ((): string => {
  const dir = fileURLToPath(new URL('.', import.meta.url))
  const names = readdirSync(dir).filter((n) => /^(balance.*|decide-.*|outcomes|merge|topology|change-sets)\.js$/.test(n)).sort()
  const files = [...names.map((n) => `${dir}${n}`), fileURLToPath(new URL('../shared/rendezvous.js', import.meta.url))]
  return sha256hex(files.map((f) => `${f.slice(f.lastIndexOf('/') + 1)}\n${readFileSync(f, 'utf8')}`).join('\n'))
})()

/**
 * What the decisions of a run depend on besides index lines, references and
 * the cutoff: every server and mount as `GET /mounts` described it
 * (priority included: it orders mounts), the policy, the code. Stored
 * outcomes are reused, and stored lines trusted, only under an equal one.
 */
export function runFingerprint(servers: ReadonlyArray<{ uuid: string; url: string; mounts: readonly MountInfo[] }>, policy: BalancePolicy): string {
  const byUuid = <T extends { uuid: string }>(a: T, b: T): number => (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0)
  const layout = [...servers].sort(byUuid).map((s) => ({
    uuid: s.uuid,
    url: s.url,
    mounts: [...s.mounts].sort(byUuid).map((m) => ({ ...m, storageClasses: [...m.storageClasses].sort() })),
  }))
  const rest = { ...policy, trashCutoff: undefined }
  return sha256hex(JSON.stringify({ version: STORE_VERSION, code: CODE_DIGEST, layout, policy: rest }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))
}

export interface PlanReadsInput {
  client: DatamanagerClient
  servers: readonly ServerMounts[]
  store: IndexStore
  writer: StoreWriter
  /** `--full`: every mount in full. */
  full: boolean
  fingerprint: string
  signal?: AbortSignal
}

/** How each mount (`server/mount`) is read this run: incremental only under the stored fingerprint, with stored lines and usable digests. */
export async function planReads(input: PlanReadsInput): Promise<Map<string, ReadPlan>> {
  const { store, full, fingerprint } = input
  const committed = store.committed
  const plans = new Map<string, ReadPlan>()
  const pending: Array<Promise<void>> = []
  for (const server of input.servers) {
    for (const mount of server.mounts ?? []) {
      const key = `${server.uuid}/${mount.uuid}`
      const stored = committed.lines.get(mount.uuid)
      let reason: string | undefined
      if (full) reason = '--full'
      else if (committed.meta.fingerprint === '' || stored === undefined || !committed.meta.mounts.includes(key)) reason = 'no stored index'
      else if (committed.meta.fingerprint !== fingerprint) reason = 'servers, mounts, policy or datamanager changed since the last committed run'
      if (reason !== undefined) {
        plans.set(key, { read: 'full', reason, bytes: 0 })
        continue
      }
      const planning = planRead({ client: input.client, server, mount: mount.uuid, stored: stored!, writer: input.writer, ...(input.signal ? { signal: input.signal } : {}) })
      pending.push(planning.then((plan) => void plans.set(key, plan)))
    }
  }
  await Promise.all(pending)
  // Prefixes read again are read back by the pass: on disk first.
  await input.writer.flush()
  return plans
}

export interface ReferencesRead {
  summary: CollectionsSummary
  source: ReferenceSource
  /** `reused`: the collection files are byte for byte the last committed run's, their references taken from the store. */
  collections: 'reused' | 'read'
  /** What the store may record of these collections (undefined when they changed while read). */
  digest: CollectionsDigest | undefined
}

export interface ReadReferencesInput {
  config: Config
  dm: DatamanagerConfig
  store: IndexStore
  spill: Spill
  /** Read the collections whatever is stored (`--full`, or stored references in doubt). */
  full: boolean
  progress: Progress
  signal?: AbortSignal
  /** Characters of reference lines buffered per spill file (tests make it tiny). */
  bufferChars?: number
  /** Told every collection a scan reads (collections-confirmed.jsonl); absent in a dry run. */
  confirmed?: ConfirmedRecords | undefined
  /** Collections of this many bytes or more are scanned in a worker thread (default {@link WORKER_BYTES}; tests set 0). */
  workerBytes?: number
}

/**
 * Below this, the collections are scanned on the main thread: starting a
 * worker costs ~50 ms of CPU, and the indexes of so small a cluster do not
 * take long enough to hide a scan behind.
 */
export const WORKER_BYTES = 16 << 20
/**
 * Above this, on the main thread again, until the worker's memory is bounded: at 100 M blocks
 * (3.8 GB of collections) the run peaked at 1.7 GB RSS with its threads, against 566 MiB without
 * (the target is < 1 GiB); at 10 M blocks (380 MB) at 667 MiB.
 */
export const WORKER_MAX_BYTES = 1 << 30

/** Bytes of the collection files a scan reads (0 when they cannot be listed: the scan then says why). */
async function collectionBytes(source: string): Promise<number> {
  try {
    return (await listCollectionFiles(source)).reduce((n, f) => n + f.size, 0)
  } catch {
    return 0
  }
}

/**
 * The run's references: those of the last committed run when the collection
 * files hash the same (no record is parsed), else a scan into the spill.
 */
export async function readReferences(input: ReadReferencesInput): Promise<ReferencesRead> {
  const { dm, store, spill, signal } = input
  const salt = JSON.stringify({ defaultReplication: input.config.cluster.defaultReplication, maxRecordBytes: dm.maxRecordBytes })
  const content = await digestCollections(dm.collections, salt, signal)
  const stored = store.committed.meta.collections
  if (!input.full && content !== undefined && stored !== undefined && stored.digest === content.digest && store.committed.refs !== undefined) {
    const summary: CollectionsSummary = {
      files: stored.files,
      collections: stored.collections,
      references: stored.references,
      malformed: 0,
      malformedRecords: [],
      tooLarge: 0,
      tooLargeRecords: [],
      unreadable: undefined,
    }
    const confirmed = input.confirmed
    if (confirmed !== undefined && confirmed.collections !== stored.digest) {
      // References reused, but the records collections-confirmed.jsonl needs are not those (a first run of this
      // version, or a run that stopped while scanning): read the collections for them alone.
      await confirmed.begin()
      await scanCollections(dm.collections, confirmed.tracker, scanOptions(input))
      await confirmed.end((await stampCollections(dm.collections)) === content.stamp ? stored.digest : undefined)
    }
    return { summary, source: storedReferences(store.committed.refs, store.read), collections: 'reused', digest: stored }
  }
  const dir = await mkdirIn(spill, 'references')
  const references = createReferenceSpill(dir, input.bufferChars === undefined ? {} : { bufferChars: input.bufferChars })
  const confirmed = input.confirmed
  await confirmed?.begin()
  let summary: CollectionsSummary
  const bytes = await collectionBytes(dm.collections)
  if (bytes >= (input.workerBytes ?? WORKER_BYTES) && bytes <= WORKER_MAX_BYTES) {
    const options = scanOptions(input)
    summary = await scanCollectionsInWorker(
      {
        source: dm.collections,
        dir,
        bufferChars: input.bufferChars,
        defaultReplication: options.defaultReplication,
        maxRecordBytes: dm.maxRecordBytes,
        records: confirmed !== undefined,
      },
      { signal: input.signal, onProgress: options.onProgress, records: confirmed?.tracker },
    )
  } else {
    summary = await scanCollections(dm.collections, confirmed === undefined ? references : both(references, confirmed.tracker), scanOptions(input))
    await references.finish()
  }
  const unchangedSinceDigest = content !== undefined && (await stampCollections(dm.collections)) === content.stamp
  const clean = summary.unreadable === undefined && summary.malformed === 0 && summary.tooLarge === 0
  const digest = unchangedSinceDigest && clean ? { digest: content.digest, files: summary.files, collections: summary.collections, references: summary.references } : undefined
  await confirmed?.end(digest?.digest)
  return { summary, source: spilledReferences(references, store.committed.refs), collections: 'read', digest }
}

function scanOptions(input: ReadReferencesInput): Parameters<typeof scanCollections>[2] {
  return {
    defaultReplication: input.config.cluster.defaultReplication,
    maxRecordBytes: input.dm.maxRecordBytes,
    ...(input.signal ? { signal: input.signal } : {}),
    onProgress: (done, total) => input.progress.update(total === 0 ? 0 : Math.floor((done / total) * 0x10000), `${done} bytes`),
  }
}

/** One scan feeding two sinks. */
function both(a: CollectionSink, b: CollectionSink): CollectionSink {
  return {
    addCollection(c) {
      const first = a.addCollection(c)
      const second = b.addCollection(c)
      if (first === undefined) return second
      return second === undefined ? first : Promise.all([first, second]).then(() => undefined)
    },
  }
}

let spillDirs = 0

/** A fresh directory inside the spill (a rescan after stored references were in doubt gets its own). */
async function mkdirIn(spill: Spill, name: string): Promise<string> {
  const dir = path.join(spill.dir, `${name}-${spillDirs++}`)
  await mkdir(dir, { recursive: true })
  return dir
}

/** What the run may keep for the next one. */
export interface Keep {
  store: IndexStore
  writer: StoreWriter
  refs: ReferencesRead
  fingerprint: string
  generation: number
}

/** Commits this run's lines, references and outcomes as the state the next run starts from; false (logged) when that failed. */
export async function keepState(keep: Keep, next: PassResult['next'], logger: Logger): Promise<boolean> {
  const { store, writer, refs, fingerprint, generation } = keep
  try {
    await store.commit(
      { meta: { generation, fingerprint, collections: refs.digest, mounts: next.mounts }, lines: next.lines, refs: next.refs, outcomes: next.outcomes },
      writer,
    )
    return true
  } catch (err) {
    logger.error({ err }, `incremental state not saved (the next run reads more): ${(err as Error).message}`)
    return false
  }
}

/** What report.json says the run reused. */
export function incrementalReport(refs: ReferencesRead, pass: PassResult | undefined, stateSaved: boolean): IncrementalReport {
  const indexes = pass?.indexes ?? []
  return {
    collections: refs.collections,
    fullMounts: indexes.filter((i) => i.read === 'full').length,
    incrementalMounts: indexes.filter((i) => i.read === 'incremental').length,
    indexBytes: indexes.reduce((n, i) => n + i.bytes, 0),
    prefixesReread: indexes.reduce((n, i) => n + i.prefixesReread, 0),
    prefixesReused: pass?.reusedPrefixes ?? 0,
    stateSaved,
  }
}
