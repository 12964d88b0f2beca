import type { AbstractBatchOperation, AbstractBatchOptions } from 'abstract-level'
import { KeepError } from '../shared/errors.js'
import type { Logger } from '../shared/logger.js'
import type { ItemCodec } from '../shared/worklist-items.js'
import { stateWriteError, type StateSublevel } from './state-db.js'

export type { ItemCodec } from '../shared/worklist-items.js'

export interface WorklistCounters {
  done: number
  failed: number
  skipped: number
}

/** What a list was, as persisted beside its items. */
export interface WorklistMeta {
  digest: string | null
  receivedAt: string | null
  counters: WorklistCounters
}

/** A persisted item: `key` names it for {@link WorklistStore.finish} and {@link WorklistStore.remove}. */
export interface StoredItem<T> {
  key: string
  item: T
}

/**
 * Where a worklist keeps its current list so a restart resumes it. Writes are
 * applied in call order, each resolving once durable in the database.
 */
export interface WorklistStore<T> {
  /** The current list, in order, minus finished items. Removes what an interrupted replace left behind. */
  load(): Promise<{ meta: WorklistMeta; items: Array<StoredItem<T>> }>
  /**
   * Atomically makes `items` the current list (synced batches, the meta switch last: a crash leaves the old list or the new one).
   * `fence` (PROTOCOL §4, a decimal int64) is saved in the meta switch, so it is durable exactly when the list is; without it, the list's previous fence stays.
   */
  replace(items: T[], meta: { digest: string; receivedAt: Date; fence?: string }): Promise<Array<StoredItem<T>>>
  /** Forgets a finished item; `counters` are saved with it when the item belongs to the current list. */
  finish(key: string, counters: WorklistCounters): Promise<void>
  /** Forgets items that will not run (dropped). */
  remove(keys: string[]): Promise<void>
  /** Resolves once every write issued so far has settled. */
  flush(): Promise<void>
}

export interface WorklistStoreOptions {
  /** For errors that have no caller to reject, such as removing an old list after a replace. */
  logger?: Logger
  /** Names the worklist in errors and logs. */
  name?: string
}

/** Sorts after every item key (they start with a digit). */
export const META_KEY = 'meta'
const WIDTH = 12
/** Items per batch while a replace writes its new generation. */
export const WRITE_CHUNK = 4096

interface MetaRecord {
  generation: number
  digest: string | null
  received_at: string | null
  done: number
  failed: number
  skipped: number
  /** The highest list fence applied when this list was (PROTOCOL §4); absent before any fenced list. */
  fence?: string
}

// classic-level's own option (abstract-level passes it through; memory-level ignores it).
const SYNC = { sync: true } as AbstractBatchOptions<string, string>

const pad = (n: number): string => n.toString().padStart(WIDTH, '0')

/** `<generation>:<seq>`, both zero-padded, so a generation is one ordered key range. */
export function itemKey(generation: number, seq: number): string {
  return `${pad(generation)}:${pad(seq)}`
}

const generationOf = (key: string): number => Number(key.slice(0, WIDTH))
const generationStart = (generation: number): string => `${pad(generation)}:`
const generationEnd = (generation: number): string => `${pad(generation)};`

/**
 * A {@link WorklistStore} in a sublevel of the state database. Keys are
 * `<generation>:<seq>` plus {@link META_KEY}, which names the current
 * generation; a replace writes the new generation in synced batches, the
 * meta switch in the last, and removes the old generation after.
 */
export function createWorklistStore<T>(db: StateSublevel, codec: ItemCodec<T>, options: WorklistStoreOptions = {}): WorklistStore<T> {
  const name = options.name ?? db.prefix
  let meta: MetaRecord = { generation: 0, digest: null, received_at: null, done: 0, failed: 0, skipped: 0 }
  /** The highest generation a replace has written to, whole or in part. */
  let written = 0
  let tail: Promise<unknown> = Promise.resolve()

  function serial<R>(write: () => Promise<R>): Promise<R> {
    const result = tail.then(write)
    tail = result.catch(() => undefined)
    return result
  }

  function corrupt(what: string, err: unknown): KeepError {
    const reason = err instanceof Error ? err.message : String(err)
    return new KeepError('KEEP_CONFIG', `state database: worklist ${name}: ${what}: ${reason}`, { cause: err })
  }

  async function readMeta(): Promise<MetaRecord> {
    const text = await db.get(META_KEY)
    if (text === undefined) return meta
    try {
      const record = JSON.parse(text) as MetaRecord
      if (!Number.isSafeInteger(record.generation)) throw new Error('no generation')
      return record
    } catch (err) {
      throw corrupt(`meta ${JSON.stringify(text)}`, err)
    }
  }

  async function clearOthers(generation: number): Promise<void> {
    await db.clear({ lt: generationStart(generation) })
    await db.clear({ gt: generationEnd(generation), lt: META_KEY })
  }

  return {
    load: () =>
      serial(async () => {
        meta = await readMeta()
        const items: Array<StoredItem<T>> = []
        const range = { gte: generationStart(meta.generation), lt: generationEnd(meta.generation) }
        for await (const [key, value] of db.iterator(range)) {
          try {
            items.push({ key, item: codec.decode(value) })
          } catch (err) {
            throw corrupt(`item ${key}`, err)
          }
        }
        await clearOthers(meta.generation)
        const { digest, received_at: receivedAt, done, failed, skipped } = meta
        return { meta: { digest, receivedAt, counters: { done, failed, skipped } }, items }
      }),

    replace: (items, { digest, receivedAt, fence }) =>
      serial(async () => {
        const generation = Math.max(meta.generation, written) + 1
        const next: MetaRecord = { generation, digest, received_at: receivedAt.toISOString(), done: 0, failed: 0, skipped: 0 }
        const keptFence = fence ?? meta.fence
        if (keptFence !== undefined) next.fence = keptFence
        const stored = new Array<StoredItem<T>>(items.length)
        for (let seq = 0; seq < items.length; seq++) stored[seq] = { key: itemKey(generation, seq), item: items[seq]! }
        // The new generation goes in batches of WRITE_CHUNK items, the meta
        // switch in the last: one native batch of a 64 MiB list held the whole
        // list twice more in LevelDB (the batch, and a memtable as large).
        // Atomic all the same: load() reads only the generation META names and
        // clears every other, so a crash midway leaves the old list. Every
        // batch is synced, not only the last: LevelDB does not sync a log file
        // it rotates away from, and the switch must never become durable before
        // the items it names.
        // Keys prefixed here for the root, not through the `sublevel` option:
        // that path cost ~1 KB of old-space garbage per item (a 64 MiB list
        // grew the heap by 350 MB before a full collection).
        const rootKey = (key: string): string => db.prefixKey(key, 'utf8')
        try {
          let from = 0
          do {
            // On the root's chained batch (classic-level's is native): the items
            // go straight into LevelDB's write batch, not copied op by op in JS.
            const batch = db.db.batch()
            try {
              const to = Math.min(stored.length, from + WRITE_CHUNK)
              for (let i = from; i < to; i++) batch.put(rootKey(stored[i]!.key), codec.encode(stored[i]!.item))
              if (to === stored.length) batch.put(rootKey(META_KEY), JSON.stringify(next))
              from = to
              await batch.write(SYNC)
            } catch (err) {
              await batch.close().catch(() => undefined)
              throw err
            }
          } while (from < stored.length)
        } catch (err) {
          // The next replace takes a fresh generation, and the partial one goes with the next clear.
          written = generation
          throw stateWriteError(err, `worklist ${name}: saving the list`)
        }
        written = generation
        meta = next
        // Queued behind this write, not awaited: the new list is durable already.
        serial(() => db.clear({ lt: generationStart(generation) })).catch((err: unknown) => {
          options.logger?.error({ err, worklist: name }, 'removing the previous list failed; it goes on the next open')
        })
        return stored
      }),

    finish: (key, counters) =>
      serial(async () => {
        if (generationOf(key) !== meta.generation) return db.del(key)
        meta = { ...meta, ...counters }
        return db.batch([
          { type: 'del', key },
          { type: 'put', key: META_KEY, value: JSON.stringify(meta) },
        ])
      }),

    remove: (keys) => serial(() => db.batch(keys.map((key) => ({ type: 'del' as const, key })))),

    flush: () => serial(async () => undefined),
  }
}

/**
 * The fence saved with the current list of a worklist sublevel (PROTOCOL §4),
 * 0n when none was ever applied. Read once at start, before any replace.
 */
export async function readStoredFence(db: StateSublevel): Promise<bigint> {
  const text = await db.get(META_KEY)
  if (text === undefined) return 0n
  try {
    const fence = (JSON.parse(text) as MetaRecord).fence
    return fence === undefined ? 0n : BigInt(fence)
  } catch (err) {
    throw new KeepError('KEEP_CONFIG', `state database: worklist ${db.prefix}: fence in meta ${JSON.stringify(text)}: ${(err as Error).message}`, { cause: err })
  }
}
