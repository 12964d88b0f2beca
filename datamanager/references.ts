import { open, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { StringDecoder } from 'node:string_decoder'
import type { Want } from './balance.js'
import type { CollectionSink, ParsedCollection } from './collections.js'
import type { RefCursor } from './manifest.js'

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
 * Collects references in memory in bounded chunks and writes each chunk,
 * sorted by hash, to a file of its own (a sorted run); reading merges the
 * runs (a k-way merge, ties in run order) and combines each hash's entries.
 * One line per distinct hash per chunk, no get-then-put per reference, and
 * only sequential file I/O (LevelDB spent most of a 10 M-block run
 * compacting these keys).
 *
 * A reference line is `hash \t size \t replication \t references \t
 * classes (JSON array, sorted) \t collection uuids (space-separated)`;
 * the merged lines are also the per-prefix reference records the
 * incremental state keeps ({@link parseReferenceLines}).
 */
export interface ReferenceSpill extends CollectionSink {
  /** Writes the last chunk; call once, after the last collection. */
  finish(): Promise<void>
  /** Merged reference lines (one per distinct hash, each ending in `\n`) in hash order, in batches. */
  lines(): AsyncIterable<string[]>
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
  /** JSON array of sorted class names (JSON never holds a raw tab or newline: the separators). */
  classes: string
  uuids: string
  /** The last collection added, so that a collection naming a block twice is listed once. */
  last: string
}

const BATCH = 1024
const WRITE_CHARS = 1 << 20
/** Read buffer per run while merging: all runs together hold about this much. */
const MERGE_BUFFER_TOTAL = 16 << 20

/** A reference spill writing its sorted runs into `dir` (which must exist; the caller removes it). */
export function createReferenceSpill(dir: string, options: ReferenceSpillOptions = {}): ReferenceSpill {
  const chunkSize = options.chunkSize ?? 200_000
  const maxChunkChars = options.maxChunkChars ?? 32 << 20
  let chunk = new Map<string, Aggregate>()
  let chunkChars = 0
  const runs: string[] = []
  const classKeys = new Map<readonly string[], string>()

  // The write of one run (in libuv's threads) overlaps the building of the next (on ours).
  let writing: Promise<void> | undefined
  const flush = async (): Promise<void> => {
    if (chunk.size === 0) return
    const full = chunk
    chunk = new Map()
    chunkChars = 0
    const file = path.join(dir, `refs-${runs.length}.txt`)
    runs.push(file)
    const hashes = [...full.keys()].sort()
    await writing
    writing = writeRun(file, hashes, full)
    writing.catch(() => {}) // awaited by the next flush or by finish(); never an unhandled rejection meanwhile
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

  const lines = (): AsyncIterable<string[]> => mergeRuns(runs)
  return {
    get chunks() {
      return runs.length
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
    lines,
    blocks: () => parsedBatches(lines()),
  }
}

async function writeRun(file: string, hashes: readonly string[], chunk: ReadonlyMap<string, Aggregate>): Promise<void> {
  const handle = await open(file, 'w')
  try {
    let text = ''
    for (const hash of hashes) {
      const a = chunk.get(hash)!
      text += `${hash}\t${a.size}\t${a.replication}\t${a.refs}\t${a.classes}\t${a.uuids}\n`
      if (text.length >= WRITE_CHARS) {
        await handle.write(text)
        text = ''
      }
    }
    if (text !== '') await handle.write(text)
  } finally {
    await handle.close()
  }
}

/** Reads one sorted run line by line, a buffer at a time. */
class RunReader {
  line = ''
  /** The hash the current line starts with. */
  hash = ''
  done = false
  private lines: string[] = []
  private pos = 0
  private offset = 0
  private rest = ''
  private readonly decoder = new StringDecoder('utf8')
  private readonly buf: Buffer

  constructor(
    private readonly handle: FileHandle,
    readonly run: number,
    bufferBytes: number,
  ) {
    this.buf = Buffer.allocUnsafe(bufferBytes)
  }

  /** Moves to the next line; returns a promise only when a new buffer must be read. */
  advance(): void | Promise<void> {
    if (this.pos < this.lines.length) {
      this.line = this.lines[this.pos++]!
      this.hash = this.line.slice(0, 32)
      return undefined
    }
    return this.refill()
  }

  private async refill(): Promise<void> {
    for (;;) {
      const { bytesRead } = await this.handle.read(this.buf, 0, this.buf.length, this.offset)
      this.offset += bytesRead
      const text = this.rest + (bytesRead === 0 ? this.decoder.end() : this.decoder.write(this.buf.subarray(0, bytesRead)))
      const cut = text.lastIndexOf('\n')
      if (bytesRead === 0 && cut === -1) {
        this.done = true
        return
      }
      if (cut === -1) {
        this.rest = text
        continue
      }
      this.rest = text.slice(cut + 1)
      this.lines = text.slice(0, cut).split('\n')
      this.pos = 1
      this.line = this.lines[0]!
      this.hash = this.line.slice(0, 32)
      return
    }
  }
}

/** Merges sorted runs by hash (ties in run order) and combines each hash's lines into one. */
async function* mergeRuns(runs: readonly string[]): AsyncGenerator<string[]> {
  const bufferBytes = Math.max(16 << 10, Math.min(1 << 20, Math.floor(MERGE_BUFFER_TOTAL / Math.max(1, runs.length))))
  const handles: FileHandle[] = []
  try {
    const heap: RunReader[] = []
    for (let i = 0; i < runs.length; i++) {
      const handle = await open(runs[i]!, 'r')
      handles.push(handle)
      const reader = new RunReader(handle, i, bufferBytes)
      await reader.advance()
      if (!reader.done) heapPush(heap, reader)
    }
    let out: string[] = []
    let current: string | undefined
    let currentHash = ''
    while (heap.length > 0) {
      const top = heap[0]!
      const line = top.line
      if (current !== undefined && top.hash === currentHash) current = combine(current, line)
      else {
        if (current !== undefined) out.push(`${current}\n`)
        current = line
        currentHash = top.hash
        if (out.length >= BATCH) {
          yield out
          out = []
        }
      }
      const pending = top.advance()
      if (pending !== undefined) await pending
      if (top.done) heapPop(heap)
      else heapSift(heap, 0)
    }
    if (current !== undefined) out.push(`${current}\n`)
    if (out.length > 0) yield out
  } finally {
    await Promise.allSettled(handles.map((h) => h.close()))
  }
}

function before(a: RunReader, b: RunReader): boolean {
  return a.hash < b.hash || (a.hash === b.hash && a.run < b.run)
}

function heapPush(heap: RunReader[], r: RunReader): void {
  heap.push(r)
  let i = heap.length - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (!before(heap[i]!, heap[parent]!)) break
    ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
    i = parent
  }
}

function heapPop(heap: RunReader[]): void {
  const last = heap.pop()!
  if (heap.length === 0) return
  heap[0] = last
  heapSift(heap, 0)
}

function heapSift(heap: RunReader[], i: number): void {
  for (;;) {
    const l = 2 * i + 1
    const r = l + 1
    let best = i
    if (l < heap.length && before(heap[l]!, heap[best]!)) best = l
    if (r < heap.length && before(heap[r]!, heap[best]!)) best = r
    if (best === i) return
    ;[heap[i], heap[best]] = [heap[best]!, heap[i]!]
    i = best
  }
}

/** Two lines of one hash from two chunks: the most replication, references summed, classes united, uuids joined. */
function combine(a: string, b: string): string {
  const x = a.split('\t')
  const y = b.split('\t')
  const classes = x[4] === y[4] ? x[4]! : unionClasses(x[4]!, y[4]!)
  return `${x[0]}\t${x[1]}\t${Math.max(Number(x[2]), Number(y[2]))}\t${Number(x[3]) + Number(y[3])}\t${classes}\t${joinUuids(x[5]!, y[5]!)}`
}

async function* parsedBatches(lines: AsyncIterable<string[]>): AsyncGenerator<ReferencedBlock[]> {
  const parser = createReferenceParser()
  for await (const batch of lines) yield batch.map(parser)
}

/** Parses reference lines (each with its `\n`), sharing one class array per distinct class set. */
export function createReferenceParser(): (line: string) => ReferencedBlock {
  const parsedClasses = new Map<string, readonly string[]>()
  return (line) => {
    const t1 = line.indexOf('\t')
    const t2 = line.indexOf('\t', t1 + 1)
    const t3 = line.indexOf('\t', t2 + 1)
    const t4 = line.indexOf('\t', t3 + 1)
    const t5 = line.indexOf('\t', t4 + 1)
    const json = line.slice(t4 + 1, t5)
    let classes = parsedClasses.get(json)
    if (classes === undefined) {
      classes = JSON.parse(json) as string[]
      if (parsedClasses.size < 1000) parsedClasses.set(json, classes)
    }
    return {
      hash: line.slice(0, t1),
      size: Number(line.slice(t1 + 1, t2)),
      want: { replication: Number(line.slice(t2 + 1, t3)), classes, references: Number(line.slice(t3 + 1, t4)) },
      collections: line.slice(t5 + 1, line.length - 1),
    }
  }
}

/** The reference lines of one stored record (as {@link ReferenceSpill.lines} produced them), parsed. */
export function parseReferenceLines(text: string, parse = createReferenceParser()): ReferencedBlock[] {
  const out: ReferencedBlock[] = []
  for (let pos = 0; pos < text.length; ) {
    const nl = text.indexOf('\n', pos)
    out.push(parse(text.slice(pos, nl + 1)))
    pos = nl + 1
  }
  return out
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
