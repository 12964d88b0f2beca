import type { Logger } from '../shared/logger.js'
import { parseLocator } from '../shared/locator.js'
import type { KeepstoreClient } from '../shared/keepstore-client.js'
import { pullItemCodec, trashItemCodec, type PullItem, type TrashItem } from '../shared/worklist-items.js'
import type { Keepstore } from './keepstore.js'
import type { KeepstoreMetrics } from './metrics.js'
import { createWorklist, type ItemOutcome, type Worklist } from './worklist.js'
import { createPullHandler } from './pull-worker.js'
import { createTrashHandler } from './trash-worker.js'
import type { StateDb } from './state-db.js'
import type { Slots } from './slots.js'
import { createFenceGate, type FenceGate } from './fence.js'
import { readStoredFence } from './worklist-store.js'

export interface WorklistSet {
  pull: Worklist<PullItem>
  trash: Worklist<TrashItem>
  /** Every list replace goes through it (PROTOCOL §4 fencing). */
  fence: FenceGate
  /** Whether a URL is a keepstore of this cluster (pull sources must be). */
  isKnownServer(url: string): boolean
  close(): Promise<void>
}

export interface WorklistSetOptions {
  keepstore: Keepstore
  db: StateDb
  client: KeepstoreClient
  metrics: KeepstoreMetrics
  logger: Logger
  /** The block-write pool shared with PUTs; pull writes wait for a slot (bounded by pullConcurrency). */
  writes?: Slots
  pullConcurrency: number
  trashConcurrency: number
  isKnownServer(url: string): boolean
  /** A pull source known to be down (live membership); such sources are skipped. Unknown → false. */
  isDown?(url: string): boolean
}

const pullTarget = (item: PullItem): string => `${parseLocator(item.locator).hash}/${item.mount_uuid ?? ''}`

/** Counts failed items by reason: the error code, or what a handler's own `failed` means for that list. */
function countFailures(metrics: KeepstoreMetrics, list: 'pull' | 'trash', unthrown: string) {
  return (_item: unknown, outcome: ItemOutcome, reason?: string): void => {
    if (outcome === 'failed') metrics.worklistFailures.inc({ list, reason: reason ?? unthrown })
  }
}

/** The keepstore's two worklists, persisted in its state database, opened (resumed) and running. */
export async function createWorklists(options: WorklistSetOptions): Promise<WorklistSet> {
  const { keepstore, db, metrics, logger, writes } = options
  const pullStore: Pick<Keepstore, 'requireWritable' | 'holdsOn' | 'writeTo'> = {
    requireWritable: (mount) => keepstore.requireWritable(mount),
    holdsOn: (mount, hash) => keepstore.holdsOn(mount, hash),
    writeTo: (mount, hash, body, opts) =>
      writes
        ? writes.run(() => keepstore.writeTo(mount, hash, body, opts), { wait: 'always', ...(opts?.signal ? { signal: opts.signal } : {}) })
        : keepstore.writeTo(mount, hash, body, opts),
  }
  const pull: Worklist<PullItem> = createWorklist<PullItem>({
    name: 'pull',
    concurrency: options.pullConcurrency,
    db: db.sublevel('pull'),
    codec: pullItemCodec,
    logger: logger.child({ worklist: 'pull' }),
    onOutcome: countFailures(metrics, 'pull', 'every_source_failed'),
    handle: createPullHandler({
      keepstore: pullStore,
      signer: keepstore.signer,
      client: options.client,
      logger: logger.child({ worklist: 'pull' }),
      dropDuplicates: (done) => {
        const target = pullTarget(done)
        return pull.drop((queued) => pullTarget(queued) === target)
      },
      ...(options.isDown ? { isDown: options.isDown } : {}),
      onBytes: (n) => metrics.pullBytes.inc(n),
      onFailure: (reason) => metrics.pullFailures.inc({ reason }),
    }),
  })
  const trash: Worklist<TrashItem> = createWorklist<TrashItem>({
    name: 'trash',
    concurrency: options.trashConcurrency,
    db: db.sublevel('trash'),
    codec: trashItemCodec,
    logger: logger.child({ worklist: 'trash' }),
    onOutcome: countFailures(metrics, 'trash', 'failed'),
    handle: createTrashHandler({ keepstore, logger: logger.child({ worklist: 'trash' }) }),
  })
  await pull.open()
  await trash.open()
  const [pullFence, trashFence] = await Promise.all([readStoredFence(db.sublevel('pull')), readStoredFence(db.sublevel('trash'))])
  return {
    pull,
    trash,
    fence: createFenceGate(pullFence > trashFence ? pullFence : trashFence),
    isKnownServer: options.isKnownServer,
    async close() {
      await Promise.all([pull.close(), trash.close()])
    },
  }
}
