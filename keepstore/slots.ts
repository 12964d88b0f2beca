import { KeepError } from '../shared/errors.js'

/** Gives a slot back; calling it twice is harmless. */
export type Release = () => void

/**
 * A pool of `max` slots with a FIFO queue of at most `maxQueued` waiters;
 * beyond that, {@link Slots.acquire} fails at once with `KEEP_UNAVAILABLE`
 * (503) rather than growing memory. A waiter whose signal aborts leaves the
 * queue. The keepstore has two pools: one for requests in general and one for
 * block writes (PUTs and pull writes), so reads never wait behind writes.
 */
export class Slots {
  private running = 0
  private readonly queue: Array<{ wake: () => void }> = []

  constructor(
    readonly max: number,
    readonly maxQueued: number = max,
  ) {}

  get inUse(): number {
    return this.running
  }

  get waiting(): number {
    return this.queue.length
  }

  /**
   * Takes a slot, waiting in the queue when all are busy. `wait: 'always'`
   * ignores the queue's cap (for internal work already bounded by its own
   * concurrency, such as pull workers).
   */
  async acquire(options: { signal?: AbortSignal; wait?: 'bounded' | 'always' } = {}): Promise<Release> {
    const { signal } = options
    signal?.throwIfAborted()
    if (this.running < this.max) {
      this.running++
      return this.releaser()
    }
    if (options.wait !== 'always' && this.queue.length >= this.maxQueued) {
      throw new KeepError('KEEP_UNAVAILABLE', 'server is busy, try again')
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        wake: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
      }
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter)
        if (i >= 0) this.queue.splice(i, 1)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.queue.push(waiter)
    })
    // The slot was handed over by the releaser: `running` already counts it.
    return this.releaser()
  }

  /** A slot if one is free right now (then nobody queues either), else undefined: no waiting. */
  tryAcquire(): Release | undefined {
    if (this.running >= this.max) return undefined
    this.running++
    return this.releaser()
  }

  /** Runs `fn` holding a slot. */
  async run<R>(fn: () => Promise<R>, options: { signal?: AbortSignal; wait?: 'bounded' | 'always' } = {}): Promise<R> {
    const release = await this.acquire(options)
    try {
      return await fn()
    } finally {
      release()
    }
  }

  private releaser(): Release {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.queue.shift()
      if (next) next.wake()
      else this.running--
    }
  }
}
