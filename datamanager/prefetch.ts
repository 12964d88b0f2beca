import type { Readable } from 'node:stream'
import { EMPTY_SHA256, PREFIX_COUNT, sha256hex } from '../shared/index-digests.js'
import type { ReadPlan } from './index-reuse.js'
import { IndexParser } from './index-parser.js'
import { EMPTY_RECORD, type StoredRecord, type StoreWriter } from './index-store.js'
import { indexPath, newStatus, settleStatus, type DatamanagerClient, type IndexStatus } from './indexes.js'
import type { ServerMounts } from './sanity.js'

export interface PrefetchInput {
  client: DatamanagerClient
  servers: readonly ServerMounts[]
  /** Plans from `planReads`; every `full` one is read now and, when it reads clean, replaced by a `prefetched` one. */
  plans: Map<string, ReadPlan>
  writer: StoreWriter
  signal?: AbortSignal
}

/**
 * Reads every mount planned `full` into this run's store records before
 * anything is decided, all mounts at once, while the collections are read
 * elsewhere (a worker thread): the balance pass then reads each prefix back
 * from the store, as it does for an incremental mount (and can hand it to
 * a worker thread). Every line is checked as a full read in the pass checks
 * it ({@link IndexParser}, without building entries); a mount that does not
 * read clean (failed, incomplete, unsorted, a line too long, the run's
 * deadline) keeps its `full` plan, and the pass reads it again itself, as
 * it always did: spilling an unsorted index, recording a failure.
 */
export async function prefetchFullReads(input: PrefetchInput): Promise<void> {
  const { plans } = input
  const reads: Array<Promise<void>> = []
  for (const server of input.servers) {
    for (const mount of server.mounts ?? []) {
      const key = `${server.uuid}/${mount.uuid}`
      const plan = plans.get(key) ?? { read: 'full', reason: 'no stored index', bytes: 0 }
      if (plan.read !== 'full') continue
      reads.push(
        prefetchOne(input, server, mount.uuid, plan.reason).then((read) => {
          read.status.bytes += plan.bytes
          if (read.status.state === 'complete' && input.signal?.aborted !== true) plans.set(key, { read: 'prefetched', status: read.status, records: read.records })
        }),
      )
    }
  }
  await Promise.all(reads)
  // The pass reads the records back: on disk first.
  await input.writer.flush()
}

async function prefetchOne(
  input: PrefetchInput,
  server: ServerMounts,
  mount: string,
  reason: string,
): Promise<{ status: IndexStatus; records: StoredRecord[] }> {
  const { writer } = input
  const status = newStatus(server, mount, 'full', reason)
  const records = new Array<StoredRecord>(PREFIX_COUNT).fill(EMPTY_RECORD)
  const parser = new IndexParser({ checkOnly: true })
  let body: Readable | undefined
  try {
    body = await input.client.getStream(server.url, indexPath(mount), input.signal ? { signal: input.signal } : {})
    for await (const chunk of body) {
      status.bytes += (chunk as Buffer).length
      for (const g of parser.pushGroups(chunk as Buffer)) {
        // Always a new record, even for the last run's very bytes: the pass reads these back, and a stored
        // record damaged on disk must not turn a full read, the cure for doubt, into another doubt.
        records[parseInt(g.prefix, 16)] = g.bytes.length === 0 ? { ...EMPTY_RECORD, sha256: EMPTY_SHA256 } : writer.append(g.bytes, g.lines, sha256hex(g.bytes))
      }
      if (parser.error !== undefined) throw parser.error
      const draining = writer.drain()
      if (draining !== undefined) await draining
    }
    settleStatus(status, parser)
  } catch (err) {
    status.state = parser.unsorted ? 'unsorted' : parser.lineTooLong ? 'line-too-long' : 'failed'
    status.error = (err as Error).message
  } finally {
    status.lines = parser.lines
    body?.destroy()
  }
  return { status, records }
}
