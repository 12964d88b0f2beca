import type { Want } from './balance.js'
import type { CollectionSink, ParsedCollection } from './collections.js'
import type { RefCursor } from './manifest.js'
import type { SpillDb } from './spill.js'

/** A block some collection references, with what the collections want of it (PROTOCOL §7). */
export interface ReferencedBlock {
  hash: string
  size: number
  want: Want
  /**
   * Uuids of the referencing collections, space-separated. Only the
   * lost-blocks file reads it; it lives in the spill, never in a run-long map.
   */
  collections: string
}

/**
 * Collects references in memory in bounded chunks and spills each chunk to
 * `level` as one sorted batch, keyed `hash + chunk number`; iterating the
 * database then yields each hash's chunk entries next to each other, merged
 * here. One write per distinct hash per chunk, no get-then-put per reference.
 */
export interface ReferenceSpill extends CollectionSink {
  /** Spills the last chunk; call once, after the last collection. */
  finish(): Promise<void>
  /** Referenced blocks in hash order, in batches. */
  blocks(): AsyncIterable<ReferencedBlock[]>
  /** Chunks written so far. */
  readonly chunks: number
}

export interface ReferenceSpillOptions {
  /** Distinct hashes held in memory before a chunk is spilled (default 200 000). */
  chunkSize?: number
  /** Characters of collection uuids held before a chunk is spilled, whatever its size (default 32 Mi). */
  maxChunkChars?: number
}

interface Aggregate {
  size: number
  replication: number
  refs: number
  /** JSON array of sorted class names (JSON never holds a raw tab: the value separator). */
  classes: string
  uuids: string
  /** The last collection added, so that a collection naming a block twice is listed once. */
  last: string
}

const BATCH = 1024
const WRITE_BATCH = 16_384
const TAG_WIDTH = 4

export function createReferenceSpill(db: SpillDb, options: ReferenceSpillOptions = {}): ReferenceSpill {
  const chunkSize = options.chunkSize ?? 200_000
  const maxChunkChars = options.maxChunkChars ?? 32 << 20
  let chunk = new Map<string, Aggregate>()
  let chunkChars = 0
  let chunks = 0
  const classKeys = new Map<readonly string[], string>()

  // The write of one batch (on LevelDB's thread) overlaps the building of the next (on ours).
  let writing: Promise<void> | undefined
  const flush = async (): Promise<void> => {
    if (chunk.size === 0) return
    const full = chunk
    chunk = new Map()
    chunkChars = 0
    const tag = (chunks++).toString(36).padStart(TAG_WIDTH, '0')
    const hashes = [...full.keys()].sort()
    // Several moderate writes: one 200 k-entry batch would be held whole in native memory.
    for (let start = 0; start < hashes.length; start += WRITE_BATCH) {
      const batch = db.batch()
      const end = Math.min(start + WRITE_BATCH, hashes.length)
      for (let i = start; i < end; i++) {
        const hash = hashes[i]!
        const a = full.get(hash)!
        batch.put(hash + tag, `${a.size}\t${a.replication}\t${a.refs}\t${a.classes}\t${a.uuids}`)
      }
      await writing
      writing = batch.write()
      writing.catch(() => {}) // awaited by the next flush or by finish(); never an unhandled rejection meanwhile
    }
  }

  /**
   * Adds references until the chunk is full, spills it, and carries on: one
   * huge collection costs one chunk of memory, not one entry per reference.
   */
  const add = (uuid: string, replication: number, classes: string, refs: RefCursor): void | Promise<void> => {
    while (refs.next()) {
      const hash = refs.hash
      const a = chunk.get(hash)
      if (a === undefined) {
        chunk.set(flatCopy(hash), { size: refs.size, replication, refs: 1, classes, uuids: uuid, last: uuid })
        chunkChars += uuid.length
      } else {
        a.refs++
        if (replication > a.replication) a.replication = replication
        if (classes !== a.classes) a.classes = unionClasses(a.classes, classes)
        if (a.last !== uuid) {
          a.uuids += ` ${uuid}`
          a.last = uuid
          chunkChars += uuid.length + 1
        }
      }
      if (chunk.size >= chunkSize || chunkChars >= maxChunkChars) return flush().then(() => add(uuid, replication, classes, refs))
    }
    return undefined
  }

  return {
    get chunks() {
      return chunks
    },
    addCollection(collection: ParsedCollection) {
      let classes = classKeys.get(collection.classes)
      if (classes === undefined) {
        classes = JSON.stringify(collection.classes)
        if (classKeys.size < 1000) classKeys.set(collection.classes, classes)
      }
      return add(collection.uuid, collection.replication, classes, collection.refs.cursor())
    },
    async finish() {
      await flush()
      await writing
    },
    blocks: () => readBlocks(db),
  }
}

async function* readBlocks(db: SpillDb): AsyncGenerator<ReferencedBlock[]> {
  const parsedClasses = new Map<string, readonly string[]>()
  const classesOf = (json: string): readonly string[] => {
    let classes = parsedClasses.get(json)
    if (classes === undefined) {
      classes = JSON.parse(json) as string[]
      if (parsedClasses.size < 1000) parsedClasses.set(json, classes)
    }
    return classes
  }
  const iterator = db.iterator()
  let current: ReferencedBlock | undefined
  let currentClasses = ''
  try {
    for (;;) {
      const entries = await iterator.nextv(BATCH)
      if (entries.length === 0) break
      const out: ReferencedBlock[] = []
      for (const [key, value] of entries) {
        const hash = key.slice(0, 32)
        const t1 = value.indexOf('\t')
        const t2 = value.indexOf('\t', t1 + 1)
        const t3 = value.indexOf('\t', t2 + 1)
        const t4 = value.indexOf('\t', t3 + 1)
        const replication = Number(value.slice(t1 + 1, t2))
        const refs = Number(value.slice(t2 + 1, t3))
        const classes = value.slice(t3 + 1, t4)
        const uuids = value.slice(t4 + 1)
        if (current !== undefined && current.hash === hash) {
          const want = current.want
          current.want = {
            replication: Math.max(want.replication, replication),
            classes: classes === currentClasses ? want.classes : classesOf((currentClasses = unionClasses(currentClasses, classes))),
            references: (want.references ?? 0) + refs,
          }
          current.collections = joinUuids(current.collections, uuids)
          continue
        }
        if (current !== undefined) out.push(current)
        currentClasses = classes
        current = {
          hash,
          size: Number(value.slice(0, t1)),
          want: { replication, classes: classesOf(classes), references: refs },
          collections: uuids,
        }
      }
      if (out.length > 0) yield out
    }
    if (current !== undefined) yield [current]
  } finally {
    await iterator.close()
  }
}

/**
 * A hash cut out of a manifest is a slice that keeps the whole manifest
 * alive and sorts ~4× slower than a flat string; a chunk key gets its own
 * copy (once per distinct hash per chunk, not per reference).
 */
function flatCopy(hash: string): string {
  return Buffer.from(hash, 'latin1').toString('latin1')
}

/** A collection split across two chunks shows at the end of one and the start of the next. */
function joinUuids(a: string, b: string): string {
  const space = b.indexOf(' ')
  const first = space === -1 ? b : b.slice(0, space)
  const lastSpace = a.lastIndexOf(' ')
  const last = lastSpace === -1 ? a : a.slice(lastSpace + 1)
  if (first !== last) return `${a} ${b}`
  return space === -1 ? a : `${a} ${b.slice(space + 1)}`
}

function unionClasses(a: string, b: string): string {
  const set = new Set([...(JSON.parse(a) as string[]), ...(JSON.parse(b) as string[])])
  return JSON.stringify([...set].sort())
}
