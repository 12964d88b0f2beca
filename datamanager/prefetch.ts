import { PREFIX_COUNT } from '../shared/index-digests.js'
import type { ReadPlan } from './index-reuse.js'
import type { StoredRecord, StoreWriter } from './index-store.js'
import { openFullIndex, type DatamanagerClient } from './indexes.js'
import { keepLines } from './keep-lines.js'
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
 * from the store, as it does for an incremental mount. The index is checked
 * exactly as the pass checks it ({@link openFullIndex}); a mount that does
 * not read clean (failed, incomplete, unsorted, a line too long, the run's
 * deadline) keeps its `full` plan, and the pass reads it again itself, as it
 * always did: spilling an unsorted index, recording a failure.
 */
export async function prefetchFullReads(input: PrefetchInput): Promise<void> {
  const { plans, writer } = input
  const reads: Array<Promise<void>> = []
  for (const server of input.servers) {
    for (const mount of server.mounts ?? []) {
      const key = `${server.uuid}/${mount.uuid}`
      const plan = plans.get(key) ?? { read: 'full', reason: 'no stored index', bytes: 0 }
      if (plan.read !== 'full') continue
      reads.push(
        (async () => {
          const source = openFullIndex(input.client, server, mount.uuid, { ...(input.signal ? { signal: input.signal } : {}), fullReason: plan.reason })
          const records = new Array<StoredRecord>(PREFIX_COUNT)
          for (let i = 0; i < PREFIX_COUNT; i++) {
            const taken = source.take(i)
            const g = taken instanceof Promise ? await taken : taken
            // Always a new record, even for the last run's very bytes: the pass reads these back, and a stored
            // record damaged on disk must not turn a full read, the cure for doubt, into another doubt.
            records[i] = keepLines(writer, g.bytes!, g.entries.length, undefined)
            const draining = writer.drain()
            if (draining !== undefined) await draining
          }
          await source.finish()
          source.status.bytes += plan.bytes
          if (source.status.state === 'complete' && input.signal?.aborted !== true) plans.set(key, { read: 'prefetched', status: source.status, records })
        })(),
      )
    }
  }
  await Promise.all(reads)
  // The pass reads the records back: on disk first.
  await writer.flush()
}
