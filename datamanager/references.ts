import { closeSync, openSync, writeSync } from 'node:fs'
import { open, readFile, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { PREFIX_COUNT } from '../shared/index-digests.js'
import type { Want } from './balance.js'
import type { CollectionSink, ParsedCollection } from './collections.js'
import type { RefCursor } from './manifest.js'

/** A block some collection references, with what the collections want of it (PROTOCOL §7). */
export interface ReferencedBlock {
  hash: string
  size: number
  want: Want
  /**
   * Uuids of the referencing collections, space-separated, in the order the
   * collections were read. Only the lost-blocks file reads it; it lives in the
   * spill, never in a run-long map.
   */
  collections: string
}

/**
 * Spills references to files partitioned by hash prefix as the collections
 * are read — one line per reference, no sorting, no lookup — and gives them
 * back prefix by prefix (`000`…`fff`), each hash's lines combined into one.
 * The run decides prefix by prefix and joins references to index lines by
 * hash ({@link PrefixRefs}), so references are never sorted (sorting 10 M
 * of them cost more than reading them; LevelDB, before, more still).
 *
 * A reference line is `hash \t size \t replication \t references \t
 * classes (JSON array, sorted) \t collection uuids (space-separated)` and
 * `\n`; the combined lines of a prefix, in the order their hashes were first
 * read, are also the per-prefix reference records the incremental state
 * keeps.
 */
export interface ReferenceSpill extends CollectionSink {
  /** Writes what is still buffered; call once, after the last collection. */
  finish(): Promise<void>
  /** Each prefix's combined reference lines, in prefix order (prefixes without references included). */
  prefixes(): AsyncIterable<PrefixLines>
  /** Referenced blocks in hash order (tests; the run joins by hash instead). */
  blocks(): AsyncIterable<ReferencedBlock[]>
  /** The partition files, in prefix order, each holding `PREFIX_COUNT / files.length` prefixes (read with {@link bucketPartition}); a file may not exist. */
  readonly files: readonly string[]
}

/** One prefix's references as lines: hash → its combined line, in first-read order. */
export interface PrefixLines {
  prefix: number
  lines: Map<string, string>
}

export interface ReferenceSpillOptions {
  /** Files the references are spread over by leading hex digits (a power of 16 up to 4096; default 256). */
  partitions?: number
  /** Characters buffered per partition before they are written (default 64 Ki). */
  bufferChars?: number
  /** Write with `writeSync` (a worker thread, where blocking costs nobody else: no promise, no thread-pool hop per write). */
  sync?: boolean
}

/** Writes in flight before `addCollection` waits for them. */
const MAX_WRITES = 16

/** A reference spill writing its partition files into `dir` (which must exist; the caller removes it). */
export function createReferenceSpill(dir: string, options: ReferenceSpillOptions = {}): ReferenceSpill {
  const partitions = options.partitions ?? 256
  if (PREFIX_COUNT % partitions !== 0) throw new Error(`reference spill: ${partitions} partitions do not divide ${PREFIX_COUNT} prefixes`)
  const prefixesPer = PREFIX_COUNT / partitions
  const digits = Math.log2(partitions) / 4
  const bufferChars = options.bufferChars ?? 64 << 10
  const buffers = new Array<string>(partitions).fill('')
  const handles = new Array<Promise<FileHandle> | undefined>(partitions)
  // Writes to one file are chained: appends in flight together could land out of order.
  const tails = new Array<Promise<void> | undefined>(partitions)
  const file = (p: number): string => path.join(dir, `refs-${p}.txt`)
  let inFlight = 0
  let failure: Error | undefined

  const fds = new Array<number | undefined>(partitions)
  const write = (p: number): void => {
    const text = buffers[p]!
    buffers[p] = ''
    if (text === '') return
    if (options.sync === true) {
      const fd = (fds[p] ??= openSync(file(p), 'a'))
      const bytes = Buffer.from(text, 'utf8')
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done)
      return
    }
    let handle = handles[p]
    if (handle === undefined) {
      handle = handles[p] = open(file(p), 'a')
      handle.catch(() => {})
    }
    inFlight++
    const h = handle
    tails[p] = (tails[p] ?? Promise.resolve()).then(async () => {
      try {
        if (failure === undefined) await (await h).write(text)
      } catch (err) {
        failure ??= err as Error
      } finally {
        inFlight--
      }
    })
  }
  const settle = async (): Promise<void> => {
    await Promise.all(tails)
    if (failure !== undefined) throw failure
  }

  const classKeys = new Map<readonly string[], string>()
  /** Adds references until too many writes are in flight, waits for them, and carries on. */
  const add = (refs: RefCursor, tail: string): void | Promise<void> => {
    while (refs.next()) {
      const hash = refs.hash
      const p = digits === 0 ? 0 : parseInt(hash.slice(0, digits), 16)
      buffers[p] += `${hash}\t${refs.size}${tail}`
      if (buffers[p]!.length >= bufferChars) {
        write(p)
        if (inFlight >= MAX_WRITES) return settle().then(() => add(refs, tail))
      }
    }
    return undefined
  }
  return {
    addCollection(collection: ParsedCollection) {
      let classes = classKeys.get(collection.classes)
      if (classes === undefined) {
        classes = JSON.stringify(collection.classes)
        if (classKeys.size < 1000) classKeys.set(collection.classes, classes)
      }
      return add(collection.refs.cursor(), `\t${collection.replication}\t1\t${classes}\t${collection.uuid}\n`)
    },
    async finish() {
      for (let p = 0; p < partitions; p++) write(p)
      for (const fd of fds) if (fd !== undefined) closeSync(fd)
      await settle()
      await Promise.all(handles.map((h) => h?.then((x) => x.close())))
    },
    prefixes: () => readPartitions(partitions, prefixesPer, file),
    blocks: () => sortedBlocks(readPartitions(partitions, prefixesPer, file)),
    files: Array.from({ length: partitions }, (_, p) => file(p)),
  }
}

async function* readPartitions(partitions: number, prefixesPer: number, file: (p: number) => string): AsyncGenerator<PrefixLines> {
  for (let p = 0; p < partitions; p++) {
    let text = ''
    try {
      text = await readFile(file(p), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    const first = p * prefixesPer
    const buckets = bucketPartition(text, first, prefixesPer)
    text = ''
    for (let i = 0; i < prefixesPer; i++) yield { prefix: first + i, lines: buckets[i]! }
  }
}

/** One partition file's text, as each of its prefixes' combined lines (hash → line, in first-read order). */
export function bucketPartition(text: string, first: number, prefixesPer: number): Array<Map<string, string>> {
  const buckets = Array.from({ length: prefixesPer }, () => new Map<string, string>())
  for (let pos = 0; pos < text.length; ) {
    const nl = text.indexOf('\n', pos)
    const line = text.slice(pos, nl + 1)
    pos = nl + 1
    const hash = line.slice(0, 32)
    const bucket = buckets[parseInt(hash.slice(0, 3), 16) - first]!
    const seen = bucket.get(hash)
    bucket.set(hash, seen === undefined ? line : combine(seen, line))
  }
  return buckets
}

async function* sortedBlocks(prefixes: AsyncIterable<PrefixLines>): AsyncGenerator<ReferencedBlock[]> {
  const parse = createReferenceParser()
  for await (const { lines } of prefixes) {
    if (lines.size > 0) yield [...lines.keys()].sort().map((h) => parse(lines.get(h)!))
  }
}

/** Two lines of one hash: the most replication, references summed, classes united, uuids joined (a collection naming a block twice listed once). */
function combine(a: string, b: string): string {
  const x = a.split('\t')
  const y = b.split('\t')
  const classes = x[4] === y[4] ? x[4]! : unionClasses(x[4]!, y[4]!)
  const uuids = joinUuids(x[5]!.slice(0, -1), y[5]!.slice(0, -1))
  return `${x[0]}\t${x[1]}\t${Math.max(Number(x[2]), Number(y[2]))}\t${Number(x[3]) + Number(y[3])}\t${classes}\t${uuids}\n`
}

/**
 * One prefix's references, joined to index lines by hash: `take` hands out
 * (and removes) a hash's block, `rest` what no index line asked for (the
 * lost blocks), in hash order.
 */
export class PrefixRefs {
  constructor(
    private readonly lines: Map<string, string>,
    private readonly parse: (line: string) => ReferencedBlock = createReferenceParser(),
  ) {}

  get size(): number {
    return this.lines.size
  }

  take(hash: string): ReferencedBlock | undefined {
    const line = this.lines.get(hash)
    if (line === undefined) return undefined
    this.lines.delete(hash)
    return this.parse(line)
  }

  rest(): ReferencedBlock[] {
    return [...this.lines.keys()].sort().map((h) => this.parse(this.lines.get(h)!))
  }
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

/** The reference lines of one stored record, by hash, in record order. */
export function referenceLines(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (let pos = 0; pos < text.length; ) {
    const nl = text.indexOf('\n', pos)
    const line = text.slice(pos, nl + 1)
    out.set(line.slice(0, 32), line)
    pos = nl + 1
  }
  return out
}

/** A collection that names a block again, right after itself, is listed once. */
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
