import { KeepError } from '../shared/errors.js'
import { createLogger, type Logger } from '../shared/logger.js'
import type { StateSublevel } from './state-db.js'
import { createWorklistStore, type ItemCodec, type StoredItem, type WorklistCounters, type WorklistStore } from './worklist-store.js'

export type ItemOutcome = 'done' | 'failed' | 'skipped'

/** `GET /pull` and `GET /trash` (PROTOCOL §3), before the items are serialised. */
export interface WorklistStatus<T> {
  /** ISO time the current list was accepted; null when none ever was. */
  received_at: string | null
  /** sha256 hex of the accepted body. */
  digest: string | null
  queued: number
  /** Handlers running now, including items of a list since replaced. */
  in_progress: number
  /** Outcomes of items of the current list (a replace resets them). */
  done: number
  failed: number
  skipped: number
  /** The queued items, in order. */
  items: T[]
}

/** Where the list persists: a ready store, or a state database sublevel plus how to encode an item. */
export type WorklistStorage<T> =
  | { store: WorklistStore<T>; db?: never; codec?: never }
  | { db: StateSublevel; codec: ItemCodec<T>; store?: never }

export type WorklistOptions<T> = WorklistCommonOptions<T> & WorklistStorage<T>

export interface WorklistCommonOptions<T> {
  /** `pull` or `trash`: names the worklist in logs. */
  name: string
  /** Handlers in flight at most (≥ 1). */
  concurrency: number
  /**
   * Carries out one item; must be idempotent, since an item in progress when
   * the process dies runs again after a restart. A throw counts as `failed`
   * and is logged. `signal` aborts when the worklist closes.
   */
  handle(item: T, context: { signal: AbortSignal }): Promise<ItemOutcome>
  logger?: Logger
  /**
   * Called once per finished item, for metrics. `reason`: the code of the
   * error a failing handler threw (`KEEP_READ_ONLY`…; `error` when it had
   * none); undefined when the handler itself answered.
   */
  onOutcome?(item: T, outcome: ItemOutcome, reason?: string): void
}

/**
 * A persisted queue that a pool of workers drains in list order (DESIGN §4).
 * Used for pull and trash lists alike: a list sent by the datamanager
 * replaces the whole queue, never adds to it.
 *
 * - Items start strictly in list order, at most `concurrency` at a time, each
 *   taken from the head of the *current* list; an item dropped or replaced
 *   before it started never runs.
 * - A finished item (done, failed or skipped) is deleted from the store, so a
 *   restart resumes the rest, including the items that were in progress.
 * - An empty list waits for the next {@link Worklist.replace}; nothing polls.
 */
export interface Worklist<T> {
  /** Loads the persisted list (minus finished items) and starts the workers. */
  open(): Promise<void>
  /**
   * Atomically replaces the whole list; resolves once it is persisted. `[]`
   * clears it. Items in progress finish; the next item taken is the head of
   * the new list.
   */
  replace(items: T[], meta: { digest: string; receivedAt: Date; fence?: string }): Promise<void>
  /** Removes queued (not in-progress) items matching `predicate`, persisted; resolves to how many. */
  drop(predicate: (item: T) => boolean): Promise<number>
  status(): WorklistStatus<T>
  /** The counters of {@link status} without copying the queued items (for metrics and /status). */
  counts(): Omit<WorklistStatus<T>, 'received_at' | 'digest' | 'items'>
  /** Resolves when nothing is queued or in progress (at once if so), or when the worklist closes. */
  idle(): Promise<void>
  /**
   * Aborts the handlers in flight through their signal, waits for them, and
   * starts nothing more. Aborted items stay persisted, to run after a restart.
   */
  close(): Promise<void>
}

const OUTCOMES = new Set<unknown>(['done', 'failed', 'skipped'])

interface List<T> {
  items: Array<StoredItem<T>>
  /** Index of the next item to start: taking one is O(1). */
  head: number
  digest: string | null
  receivedAt: string | null
  counters: WorklistCounters
}

export function createWorklist<T>(options: WorklistOptions<T>): Worklist<T> {
  const { name, handle } = options
  if (!Number.isSafeInteger(options.concurrency) || options.concurrency < 1) {
    throw new KeepError('KEEP_CONFIG', `worklist ${name}: concurrency must be a whole number ≥ 1, not ${options.concurrency}`)
  }
  const base = options.logger ?? createLogger({ level: 'silent' })
  const logger = base.bindings()['worklist'] === undefined ? base.child({ worklist: name }) : base
  const store = options.store ?? createWorklistStore(options.db, options.codec, { logger, name })
  const controller = new AbortController()
  const running = new Set<Promise<void>>()
  let idleWaiters: Array<() => void> = []
  let state: 'new' | 'open' | 'closed' = 'new'
  let current: List<T> = { items: [], head: 0, digest: null, receivedAt: null, counters: { done: 0, failed: 0, skipped: 0 } }

  const queued = (): number => current.items.length - current.head

  function assertOpen(): void {
    if (state !== 'open') throw new KeepError('KEEP_INTERNAL', `worklist ${name}: ${state === 'new' ? 'not open yet' : 'closed'}`)
  }

  function wakeIdle(): void {
    const waiters = idleWaiters
    idleWaiters = []
    for (const resolve of waiters) resolve()
  }

  function pump(): void {
    while (state === 'open' && running.size < options.concurrency && queued() > 0) {
      const entry = current.items[current.head]!
      current.head++
      const run = execute(entry, current)
      running.add(run)
      void run.finally(() => {
        running.delete(run)
        pump()
      })
    }
    if (running.size === 0 && queued() === 0) wakeIdle()
  }

  async function execute(entry: StoredItem<T>, list: List<T>): Promise<void> {
    let outcome: ItemOutcome
    let reason: string | undefined
    try {
      outcome = await handle(entry.item, { signal: controller.signal })
      if (!OUTCOMES.has(outcome)) throw new KeepError('KEEP_INTERNAL', `handler returned ${String(outcome)}, not an ItemOutcome`)
    } catch (err) {
      if (!controller.signal.aborted) logger.warn({ err, item: entry.item }, 'item failed')
      outcome = 'failed'
      reason = err instanceof KeepError ? err.code : 'error'
    }
    // Closing: leave the item persisted so that a restart runs it again.
    if (controller.signal.aborted) return
    list.counters[outcome]++
    try {
      options.onOutcome?.(entry.item, outcome, reason)
    } catch (err) {
      logger.error({ err }, 'onOutcome hook threw')
    }
    try {
      await store.finish(entry.key, { ...list.counters })
    } catch (err) {
      logger.error({ err, key: entry.key }, 'could not remove a finished item from the state database')
    }
  }

  return {
    async open() {
      if (state !== 'new') throw new KeepError('KEEP_INTERNAL', `worklist ${name}: already ${state === 'open' ? 'open' : 'closed'}`)
      const { meta, items } = await store.load()
      current = { items, head: 0, digest: meta.digest, receivedAt: meta.receivedAt, counters: { ...meta.counters } }
      state = 'open'
      if (items.length > 0) logger.info({ count: items.length, digest: meta.digest }, 'resuming list')
      pump()
    },

    async replace(items, meta) {
      assertOpen()
      const stored = await store.replace(items, meta)
      if (state !== 'open') return
      current = {
        items: stored,
        head: 0,
        digest: meta.digest,
        receivedAt: meta.receivedAt.toISOString(),
        counters: { done: 0, failed: 0, skipped: 0 },
      }
      pump()
    },

    async drop(predicate) {
      assertOpen()
      const kept: Array<StoredItem<T>> = []
      const dropped: string[] = []
      for (let i = current.head; i < current.items.length; i++) {
        const entry = current.items[i]!
        if (predicate(entry.item)) dropped.push(entry.key)
        else kept.push(entry)
      }
      if (dropped.length === 0) return 0
      current.items = kept
      current.head = 0
      pump()
      await store.remove(dropped)
      return dropped.length
    },

    status() {
      const items: T[] = new Array<T>(queued())
      for (let i = current.head; i < current.items.length; i++) items[i - current.head] = current.items[i]!.item
      return {
        received_at: current.receivedAt,
        digest: current.digest,
        queued: items.length,
        in_progress: running.size,
        ...current.counters,
        items,
      }
    },

    counts() {
      return { queued: queued(), in_progress: running.size, ...current.counters }
    },

    idle() {
      if (state === 'closed' || (running.size === 0 && queued() === 0)) return Promise.resolve()
      return new Promise((resolve) => idleWaiters.push(resolve))
    },

    async close() {
      if (state === 'closed') return
      state = 'closed'
      controller.abort(new KeepError('KEEP_UNAVAILABLE', `worklist ${name}: closing`))
      await Promise.all(running)
      await store.flush()
      wakeIdle()
    },
  }
}

/**
 * The JSON body of `GET /pull` / `GET /trash`. Items go through the list's own
 * serialiser because trash items hold bigint mtimes, which JSON.stringify refuses.
 */
export function serializeStatus<T>(status: WorklistStatus<T>, serializeItems: (items: T[]) => string): string {
  const { items, ...counters } = status
  return `${JSON.stringify(counters).slice(0, -1)},"items":${serializeItems(items)}}`
}
