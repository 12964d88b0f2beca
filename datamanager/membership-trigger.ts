import type { Logger } from '../shared/logger.js'
import type { MembershipView } from '../shared/membership.js'

/**
 * Rebalancing on membership changes (as datad does): when a configured
 * keepstore appears in or disappears from etcd, the service runs
 * `settleMs` after the last such change instead of waiting for its period.
 * The settle time lets a restart (gone, back) pass as one change, and makes a
 * keepstore that stays gone count as down (PROTOCOL §8) in that run.
 */
export interface MembershipTrigger {
  /**
   * A signal for the next wait between runs: aborted `settleMs` after a
   * change, or at once when a change settled while the last run went on.
   */
  next(): AbortSignal
  /** The wait is over (by the signal or by the period): a change that settles from now on is due for the run after this one. */
  runStarting(): void
  close(): void
}

export function createMembershipTrigger(view: MembershipView, settleMs: number, logger: Logger): MembershipTrigger {
  let timer: NodeJS.Timeout | undefined
  let due = false
  let closed = false
  let waiting: AbortController | undefined
  const arm = (inMs: number): void => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      // Wakes the wait in progress; during a run, it is remembered for the next wait.
      if (waiting !== undefined) waiting.abort()
      else due = true
    }, inMs)
  }
  const off = view.onChange((change) => {
    logger.info({ keepstore: change.uuid, state: change.state, settleMs }, `membership changed: a run in ${settleMs} ms`)
    arm(settleMs)
  })
  // A keepstore already gone when the service started is down once the settle time has passed since: run then too.
  void view.ready(Math.max(settleMs, 30_000)).then((listed) => {
    if (!listed || closed || timer !== undefined) return
    const absent = view.members().filter((m) => m.state === 'absent' && m.since !== undefined)
    if (absent.length === 0) return
    const since = Math.max(...absent.map((m) => m.since!))
    logger.info({ absent: absent.map((m) => m.uuid), settleMs }, `keepstores absent at start: a run once ${settleMs} ms have passed`)
    arm(Math.max(0, since + settleMs - Date.now()))
  })
  return {
    next() {
      waiting = new AbortController()
      if (due) {
        due = false
        waiting.abort()
      }
      return waiting.signal
    },
    runStarting() {
      waiting = undefined
    },
    close() {
      closed = true
      off()
      clearTimeout(timer)
    },
  }
}
