import { createAtomicWriter } from './atomic-file.js'
import type { CollectionSink, ParsedCollection } from './collections.js'
import type { ReferencedBlock } from './references.js'
import { openSpillDb, type SpillDb } from './spill.js'

/**
 * The replication each collection has now, as keep-balance computes it for
 * `replication_confirmed` and `storage_classes_confirmed` (its
 * updateCollections / GetConfirmedReplication): the minimum, over the
 * collection's blocks and its desired classes, of the replication held in
 * the class (every copy an index listed, one device once), capped at the
 * collection's desired replication; 0 when a block is held nowhere in some
 * class, or when the collection has no block. The classes are the desired
 * ones when the replication is above 0, else none. A uuid that several
 * records carry (an export keep-balance's database cannot have) confirms 0:
 * its blocks cannot be told apart per record.
 *
 * Memory does not grow with the collections: each collection's desired
 * replication and classes go to a `level` spill as it is read, and a block
 * only matters to its collections when some class holds fewer copies than
 * the most any of them wants (else every one of them is capped below it):
 * only such blocks add per-collection minima, in bounded chunks spilled to
 * the same database. Writing the file walks the database in key order.
 */
export interface ConfirmedTracker extends CollectionSink {
  /** Writes what is still buffered; call after the last collection and again after the last block. */
  flush(): Promise<void>
  /** Forgets the blocks seen so far (a balance pass that starts over): only the last pass's blocks count. */
  startBlocks(): void
  /** One referenced block, with the replication it holds per wanted class (`BlockCounts.held`). */
  addBlock(reference: ReferencedBlock, held: { classes: readonly string[]; copies: readonly number[] } | undefined): void | Promise<void>
  /** What {@link addBlock} notes of a block some class holds fewer copies of than it wants: its collections (space-separated) and held copies. */
  addHeld(collections: string, held: { classes: readonly string[]; copies: readonly number[] }): void | Promise<void>
  /** Writes `file` atomically (temporary file, fsync, rename). */
  write(file: string): Promise<ConfirmedWritten>
}

export interface ConfirmedWritten {
  /** Lines written: one per collection uuid. */
  collections: number
  /** Uuids that several records carried (written with 0). */
  duplicates: number
}

export interface ConfirmedOptions {
  /** Collections whose minima are held in memory before a chunk is spilled (default 100 000). */
  chunkSize?: number
  /** The generation the first {@link ConfirmedTracker.startBlocks} moves past (a database kept across runs starts each run beyond the last). */
  generation?: number
}

/** Key = JSON of the uuid (never holds a NUL), NUL, then `c` + record number or `x` + chunk number: a collection's entries sort together, its record first. */
const SEP = '\u0000'
const BATCH = 4096
const TAG_WIDTH = 8
/** Keys of the database's own bookkeeping sort before every collection's (`"` + uuid). */
const META_GENERATION = '!generation'
const META_COLLECTIONS = '!collections'

export function createConfirmedTracker(db: SpillDb, options: ConfirmedOptions = {}): ConfirmedTracker {
  const chunkSize = options.chunkSize ?? 100_000
  let batch = db.batch()
  let batched = 0
  let records = 0
  let chunks = 0
  let generation = options.generation ?? 0
  let minima = new Map<string, Map<string, number>>()
  let writing: Promise<void> | undefined

  const writeBatch = async (): Promise<void> => {
    if (batched === 0) return
    const full = batch
    batch = db.batch()
    batched = 0
    await writing
    writing = full.write()
    writing.catch(() => {}) // awaited by the next write or by flush()
  }
  const spillMinima = async (): Promise<void> => {
    if (minima.size === 0) return
    const full = minima
    minima = new Map()
    const tag = `x${generation.toString(36).padStart(TAG_WIDTH, '0')}${(chunks++).toString(36).padStart(TAG_WIDTH, '0')}`
    for (const [key, perClass] of full) {
      batch.put(key + SEP + tag, JSON.stringify([...perClass]))
      if (++batched >= BATCH) await writeBatch()
    }
  }

  const addHeld: ConfirmedTracker['addHeld'] = (collections, held) => {
    for (const uuid of new Set(collections.split(' '))) {
      const key = JSON.stringify(uuid)
      let perClass = minima.get(key)
      if (perClass === undefined) minima.set(key, (perClass = new Map()))
      for (let i = 0; i < held.classes.length; i++) {
        const cls = held.classes[i]!
        const before = perClass.get(cls)
        if (before === undefined || held.copies[i]! < before) perClass.set(cls, held.copies[i]!)
      }
    }
    return minima.size >= chunkSize ? spillMinima() : undefined
  }

  return {
    addCollection(collection: ParsedCollection) {
      const tag = `c${(records++).toString(36).padStart(TAG_WIDTH, '0')}`
      batch.put(JSON.stringify(collection.uuid) + SEP + tag, JSON.stringify([collection.replication, collection.refs.count, collection.classes]))
      if (++batched >= BATCH) return writeBatch()
      return undefined
    },
    startBlocks() {
      generation++
      minima = new Map()
    },
    addBlock(reference, held) {
      if (held === undefined || !held.copies.some((n) => n < reference.want.replication)) return undefined
      return addHeld(reference.collections, held)
    },
    addHeld,
    async flush() {
      await spillMinima()
      await writeBatch()
      await writing
    },
    async write(file) {
      const out = await createAtomicWriter(file)
      const written: ConfirmedWritten = { collections: 0, duplicates: 0 }
      try {
        let current: Collection | undefined
        const emit = async (): Promise<void> => {
          if (current === undefined || current.records === 0) return
          written.collections++
          if (current.records > 1) written.duplicates++
          await out.write(lineOf(current))
        }
        const iterator = db.iterator({ gt: '"' })
        let stale = db.batch()
        let staleCount = 0
        try {
          for (;;) {
            const entries = await iterator.nextv(1024)
            if (entries.length === 0) break
            for (const [key, value] of entries) {
              const sep = key.lastIndexOf(SEP)
              const uuidJson = key.slice(0, sep)
              if (current?.uuidJson !== uuidJson) {
                await emit()
                current = { uuidJson, records: 0, replication: 0, references: 0, classes: new Set(), minima: new Map() }
              }
              const kind = key.charAt(sep + 1)
              if (kind === 'c' || Number.parseInt(key.slice(sep + 2, sep + 2 + TAG_WIDTH), 36) === generation) absorb(current, kind, value)
              else {
                // Minima of an earlier pass or run: never counted again, so not kept.
                stale.del(key)
                if (++staleCount % BATCH === 0) {
                  await stale.write()
                  stale = db.batch()
                }
              }
            }
          }
          await emit()
        } finally {
          await iterator.close()
        }
        await stale.write()
        await out.commit()
      } catch (err) {
        await out.abort()
        throw err
      }
      return written
    },
  }
}

interface Collection {
  uuidJson: string
  /** Records carrying the uuid. */
  records: number
  replication: number
  references: number
  classes: Set<string>
  minima: Map<string, number>
}

/** One entry of a collection: a record (`c`) or a chunk's minima (`x`). */
function absorb(c: Collection, kind: string, value: string): void {
  if (kind === 'c') {
    const [replication, references, classes] = JSON.parse(value) as [number, number, string[]]
    c.records++
    c.replication = replication
    c.references += references
    for (const cls of classes) c.classes.add(cls)
    return
  }
  for (const [cls, n] of JSON.parse(value) as Array<[string, number]>) {
    const before = c.minima.get(cls)
    if (before === undefined || n < before) c.minima.set(cls, n)
  }
}

function lineOf(c: Collection): string {
  let confirmed = c.references === 0 || c.records > 1 ? 0 : c.replication
  for (const cls of c.classes) confirmed = Math.min(confirmed, c.minima.get(cls) ?? confirmed)
  const classes = confirmed > 0 ? [...c.classes].sort() : []
  return `{"uuid":${c.uuidJson},"replication_confirmed":${confirmed},"storage_classes_confirmed":${JSON.stringify(classes)}}\n`
}

/**
 * The tracker's database kept across runs (`<stateDir>/confirmed`): a run
 * whose collections are those of the last committed run (the incremental
 * state reuses their references without reading them) reuses the records
 * they left here too. `collections` names the collections digest whose
 * records it holds, complete; undefined while none are (a scan under way,
 * or cut short). Every run counts blocks in generations of its own, so
 * minima a crashed run left behind are never counted (and are dropped by
 * the next {@link ConfirmedTracker.write}).
 */
export interface ConfirmedRecords {
  readonly tracker: ConfirmedTracker
  readonly collections: string | undefined
  /** Forgets every record: a scan of the collections follows. */
  begin(): Promise<void>
  /** The scan added every record of the collections with digest `digest` (undefined: records not to be reused). */
  end(digest: string | undefined): Promise<void>
  close(): Promise<void>
}

/** Passes one run may start (unsorted indexes, doubted mounts) before its generations run into the next run's. */
const PASSES_PER_RUN = 1024

export async function openConfirmedRecords(dir: string, options: Omit<ConfirmedOptions, 'generation'> = {}): Promise<ConfirmedRecords> {
  const db = await openSpillDb(dir)
  const run = Number((await db.get(META_GENERATION)) ?? '0') + 1
  // Taken before any block is counted: a crash later never lets the next run count this run's minima.
  await db.put(META_GENERATION, String(run))
  let collections: string | undefined = await db.get(META_COLLECTIONS)
  let tracker = createConfirmedTracker(db, { ...options, generation: run * PASSES_PER_RUN })
  return {
    get tracker() {
      return tracker
    },
    get collections() {
      return collections
    },
    async begin() {
      collections = undefined
      await db.clear()
      await db.put(META_GENERATION, String(run))
      tracker = createConfirmedTracker(db, { ...options, generation: run * PASSES_PER_RUN })
    },
    async end(digest) {
      await tracker.flush()
      collections = digest
      if (digest !== undefined) await db.put(META_COLLECTIONS, digest)
    },
    close: () => db.close(),
  }
}
