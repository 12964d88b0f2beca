import { Worker } from 'node:worker_threads'
import type { CollectionSink, CollectionsSummary, ParsedCollection } from './collections.js'
import type { ManifestRefs } from './manifest.js'

/** What a worker thread's scan is told. */
export interface ScanJob {
  source: string
  /** The reference spill's directory (exists; the caller removes it). */
  dir: string
  bufferChars: number | undefined
  defaultReplication: number
  maxRecordBytes: number
  /** Post every collection's record (uuid, replication, block count, classes) for a sink on this side. */
  records: boolean
}

/** A collection as the confirmed tracker needs it: uuid, replication, references, classes. */
export type CollectionMeta = [string, number, number, readonly string[]]

export type ScanMessage =
  | { type: 'progress'; done: number; total: number }
  | { type: 'collections'; list: CollectionMeta[] }
  | { type: 'done'; summary: CollectionsSummary }
  | { type: 'error'; message: string }

export interface ScanHooks {
  signal?: AbortSignal | undefined
  onProgress?(done: number, total: number): void
  /** Told every collection the worker read, in order (the confirmed tracker); its promises are awaited in turn. */
  records?: CollectionSink | undefined
}

/**
 * Scans the collections in a worker thread into the reference spill files
 * of `job.dir` (`createReferenceSpill(job.dir)` reads them back), so that
 * the main thread reads the indexes meanwhile: the scan (JSON, manifests,
 * the spill's writes) was a fifth of a 10 M-block run, and it ran alone.
 * Resolves with the scan's summary once the spill is on disk and every
 * record was handed to `hooks.records`.
 */
export function scanCollectionsInWorker(job: ScanJob, hooks: ScanHooks = {}): Promise<CollectionsSummary> {
  return new Promise((resolve, reject) => {
    // A bigger young generation: the scan allocates short-lived strings by the million (scavenges cost a sixth of it).
    const worker = new Worker(new URL('./collections-worker.js', import.meta.url), { workerData: job, resourceLimits: { maxYoungGenerationSizeMb: 96 } })
    let summary: CollectionsSummary | undefined
    let failure: Error | undefined
    let records: Promise<void> = Promise.resolve()
    const sink = hooks.records
    const abort = (): void => worker.postMessage({ type: 'abort' })
    hooks.signal?.addEventListener('abort', abort, { once: true })
    if (hooks.signal?.aborted === true) abort()
    worker.on('message', (m: ScanMessage) => {
      if (m.type === 'progress') hooks.onProgress?.(m.done, m.total)
      else if (m.type === 'collections' && sink !== undefined) {
        records = records.then(async () => {
          for (const [uuid, replication, count, classes] of m.list) {
            const noting = sink.addCollection(collectionOf(uuid, replication, count, classes))
            if (noting !== undefined) await noting
          }
        })
        records.catch(() => {}) // reported at exit
      } else if (m.type === 'done') summary = m.summary
      else if (m.type === 'error') failure ??= new Error(`reading the collections: ${m.message}`)
    })
    worker.on('error', (err) => (failure ??= err))
    worker.on('exit', (code) => {
      hooks.signal?.removeEventListener('abort', abort)
      records.then(
        () => {
          if (failure !== undefined) reject(failure)
          else if (summary !== undefined) resolve(summary)
          else reject(new Error(`reading the collections: the worker thread exited with code ${code}`))
        },
        (err: unknown) => reject(err as Error),
      )
    })
  })
}

/** Enough of a collection for a sink that reads uuid, replication, classes and the count of its references (never the references). */
function collectionOf(uuid: string, replication: number, count: number, classes: readonly string[]): ParsedCollection {
  const refs: ManifestRefs = {
    count,
    cursor() {
      throw new Error('collections read in a worker thread: their references are in the spill')
    },
  }
  return { uuid, replication, classes, refs }
}
