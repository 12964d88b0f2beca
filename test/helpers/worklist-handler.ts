import type { ItemOutcome } from '../../keepstore/worklist.js'

/** One call of a controlled handler, settled by the test. */
export interface HandlerCall<T> {
  item: T
  signal: AbortSignal
  finish(outcome: ItemOutcome): void
  fail(err: unknown): void
}

/**
 * A worklist handler whose calls stay pending until the test settles them:
 * no sleeps, the test awaits `started(n)` and then finishes calls in any order.
 * A call rejects with the signal's reason when its signal aborts, as a
 * well-behaved handler does.
 */
export interface ControlledHandler<T> {
  handle(item: T, context: { signal: AbortSignal }): Promise<ItemOutcome>
  /** Every call so far, in start order. */
  readonly calls: Array<HandlerCall<T>>
  /** Resolves with call number `n` (0-based) once it has started. */
  started(n: number): Promise<HandlerCall<T>>
  /** The most calls that were pending at one time. */
  readonly maxInFlight: number
}

export function createControlledHandler<T>(): ControlledHandler<T> {
  const calls: Array<HandlerCall<T>> = []
  const waiters = new Map<number, Array<(call: HandlerCall<T>) => void>>()
  let inFlight = 0
  let maxInFlight = 0

  return {
    calls,
    get maxInFlight() {
      return maxInFlight
    },
    handle(item, { signal }) {
      return new Promise<ItemOutcome>((resolve, reject) => {
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        let settled = false
        const settle = (): boolean => {
          if (settled) return false
          settled = true
          inFlight--
          return true
        }
        const call: HandlerCall<T> = {
          item,
          signal,
          finish: (outcome) => {
            if (settle()) resolve(outcome)
          },
          fail: (err) => {
            if (settle()) reject(err)
          },
        }
        signal.addEventListener('abort', () => call.fail(signal.reason), { once: true })
        const n = calls.push(call) - 1
        for (const wake of waiters.get(n) ?? []) wake(call)
        waiters.delete(n)
      })
    },
    started(n) {
      const call = calls[n]
      if (call !== undefined) return Promise.resolve(call)
      return new Promise((resolve) => waiters.set(n, [...(waiters.get(n) ?? []), resolve]))
    },
  }
}

/** A handler that answers at once: `outcomeOf(item)`, or a throw when that returns an Error. */
export function immediateHandler<T>(
  outcomeOf: (item: T) => ItemOutcome | Error = () => 'done',
): { handle(item: T): Promise<ItemOutcome>; seen: T[] } {
  const seen: T[] = []
  return {
    seen,
    async handle(item) {
      seen.push(item)
      const outcome = outcomeOf(item)
      if (outcome instanceof Error) throw outcome
      return outcome
    },
  }
}
