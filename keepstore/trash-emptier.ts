import type { Logger } from '../shared/logger.js'
import type { Keepstore } from './keepstore.js'

export interface TrashEmptier {
  /** Runs one pass now (tests call this instead of waiting for the interval). */
  runOnce(): Promise<number>
  stop(): Promise<void>
}

/** Every `intervalMs`, deletes trashed copies whose blobTrashLifetime is over. */
export function startTrashEmptier(keepstore: Pick<Keepstore, 'emptyTrash'>, intervalMs: number, logger: Logger, onDeleted?: (n: number) => void): TrashEmptier {
  let running: Promise<number> | undefined
  const runOnce = (): Promise<number> => {
    running ??= keepstore
      .emptyTrash()
      .then((n) => {
        if (n > 0) logger.info({ deleted: n }, 'emptied trash')
        onDeleted?.(n)
        return n
      })
      .finally(() => (running = undefined))
    return running
  }
  const timer = intervalMs > 0 ? setInterval(() => void runOnce().catch((err) => logger.error({ err }, 'emptying trash failed')), intervalMs) : undefined
  timer?.unref()
  return {
    runOnce,
    async stop() {
      if (timer) clearInterval(timer)
      await running?.catch(() => 0)
    },
  }
}
