import { parentPort, workerData } from 'node:worker_threads'
import { scanCollections, type ParsedCollection } from './collections.js'
import type { CollectionMeta, ScanJob, ScanMessage } from './collections-thread.js'
import { createReferenceSpill } from './references.js'

/**
 * The worker thread of {@link scanCollectionsInWorker}: scans the
 * collections into a reference spill in `job.dir`, posting progress, each
 * collection's record for the confirmed tracker (in batches, when asked),
 * and last the summary or the error.
 */
const job = workerData as ScanJob
const port = parentPort!
const post = (m: ScanMessage): void => port.postMessage(m)
const ac = new AbortController()
port.on('message', (m: { type?: string }) => {
  if (m.type === 'abort') ac.abort()
})
// Listening must not keep the thread alive: it ends when the scan does.
port.unref()

const BATCH = 1024
let batch: CollectionMeta[] = []
let lastProgress = 0

try {
  const spill = createReferenceSpill(job.dir, { sync: true, ...(job.bufferChars === undefined ? {} : { bufferChars: job.bufferChars }) })
  const sink = {
    addCollection(c: ParsedCollection) {
      if (job.records) {
        batch.push([c.uuid, c.replication, c.refs.count, c.classes])
        if (batch.length >= BATCH) {
          post({ type: 'collections', list: batch })
          batch = []
        }
      }
      return spill.addCollection(c)
    },
  }
  const summary = await scanCollections(job.source, sink, {
    defaultReplication: job.defaultReplication,
    maxRecordBytes: job.maxRecordBytes,
    signal: ac.signal,
    onProgress(done, total) {
      const now = Date.now()
      if (now - lastProgress < 100 && done < total) return
      lastProgress = now
      post({ type: 'progress', done, total })
    },
  })
  await spill.finish()
  if (batch.length > 0) post({ type: 'collections', list: batch })
  post({ type: 'done', summary })
} catch (err) {
  post({ type: 'error', message: (err as Error).message })
}
