import type { Logger } from '../shared/logger.js'
import type { LockHandle } from './lock.js'

/** The request header every list of a fenced run carries (PROTOCOL §4). */
export const FENCE_HEADER = 'X-Keep-Fence'

/**
 * A run under a cluster-wide lock (PROTOCOL §4): its lists carry the lock's
 * fence, and it stops sending for good — exit 3 — once the lock is lost or
 * any keepstore refuses a list for its fence (409: a newer holder has begun).
 */
export interface RunFence {
  /** The lock's revision, a decimal int64. */
  readonly value: string
  /** Aborted once the run must send nothing more. */
  readonly signal: AbortSignal
  /** Why it stopped, once it did. */
  readonly reason: string | undefined
  /** A keepstore answered 409 to a list: stop everything. */
  refused(server: string, message: string): void
}

/** The fence of a lock handle; undefined for a lock without one (the file lock): lists then go unfenced. */
export function createRunFence(handle: LockHandle, logger: Logger): RunFence | undefined {
  const value = handle.fence
  if (value === undefined) return undefined
  const stop = new AbortController()
  let reason: string | undefined
  const halt = (why: string): void => {
    if (stop.signal.aborted) return
    reason = why
    logger.error({ fence: value }, `no more lists from this run: ${why}`)
    stop.abort()
  }
  const lost = handle.lost
  const onLost = (): void => halt(`the datamanager lock was lost (${String((lost?.reason as Error | undefined)?.message ?? lost?.reason)})`)
  if (lost?.aborted) onLost()
  else lost?.addEventListener('abort', onLost, { once: true })
  return {
    value,
    signal: stop.signal,
    get reason() {
      return reason
    },
    refused: (server, message) => halt(`keepstore ${server} refused a list for its fence (${message}): a newer datamanager holds the lock`),
  }
}
