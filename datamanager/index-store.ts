import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { Level } from 'level'
import { syncDirectory } from './atomic-file.js'
import {
  decodeState,
  emptyState,
  EMPTY_RECORD,
  encodeState,
  forEachRecord,
  referencedSegments,
  type StoredRecord,
  type StoreState,
} from './store-manifest.js'

export * from './store-manifest.js'

/**
 * What the last committed run saw, kept for the next one
 * (`<stateDir>/incremental/`): per mount and 3-hex prefix the exact index
 * lines, per prefix the references and the decisions, each with its
 * sha256. The bytes live in append-only segment files (`seg-<gen>-<n>.dat`);
 * which record is where lives in a small `level` database (`manifest/`),
 * replaced in one synced batch when a run commits. (LevelDB itself wrote
 * 1.8 GB of 134 KB values at 42 MB/s here, and its memory-mapped tables
 * counted the whole database in RSS once read; plain files take the same
 * bytes at disk speed and are read with `pread`.) A run writes only the
 * records that changed, into segments of its own; a run that does not
 * commit leaves the manifest untouched and its segments are deleted (or, after
 * a crash, by the next run). Segments less than half live are copied forward
 * at commit, so the directory stays under about twice the live state.
 */
export interface IndexStore {
  /** The state of the last committed run ({@link emptyState} when there is none or it was unreadable). */
  readonly committed: StoreState
  /** Why the stored state was set aside, when it was. */
  readonly invalid: string | undefined
  /** Starts this run's writes: segments in the store's directory, or in `dir` (a dry run's scratch space). */
  createWriter(dir?: string): StoreWriter
  /** The bytes of a record (an empty buffer for an empty one). */
  read(record: StoredRecord): Promise<Buffer>
  /** The file a record's bytes are in (a writer's segment is on disk there once the writer flushed). */
  locate(record: StoredRecord): string
  /**
   * Makes `next` the committed state: copies the live records of mostly dead
   * segments forward, fsyncs `writer`'s segments, replaces the manifest in
   * one synced batch, then deletes the segments nothing refers to.
   */
  commit(next: StoreState, writer: StoreWriter): Promise<void>
  close(): Promise<void>
}

export interface StoreWriter {
  /** Queues `data` for the end of the current segment; returns where it will be. */
  append(data: Buffer, count: number, sha256: string): StoredRecord
  /** Undefined, or a promise that resolves once the queued bytes are below the high-water mark (call between prefixes). */
  drain(): Promise<void> | undefined
  /** Resolves once every queued write is done; rejects with the first write error. */
  flush(): Promise<void>
  /** Closes and deletes this writer's segments. */
  discard(): Promise<void>
}

export interface IndexStoreOptions {
  /** A segment is closed once it passes this many bytes (default 256 MiB). */
  segmentBytes?: number
}

const SEGMENT_RE = /^seg-\d+-\d+\.dat$/
const HIGH_WATER = 32 << 20
const WRITE_BYTES = 1 << 20

export async function openIndexStore(dir: string, options: IndexStoreOptions = {}): Promise<IndexStore> {
  await mkdir(dir, { recursive: true })
  const db = new Level<string, string>(path.join(dir, 'manifest'), { valueEncoding: 'utf8', maxOpenFiles: 16 })
  await db.open()
  const onDisk = new Map<string, string>()
  for await (const [key, value] of db.iterator()) onDisk.set(key, value)
  let committed: StoreState
  let invalid: string | undefined
  try {
    committed = decodeState(onDisk)
  } catch (err) {
    committed = emptyState()
    invalid = (err as Error).message
  }
  await removeSegmentsExcept(dir, referencedSegments(committed))
  const readers = new Map<string, Promise<FileHandle>>()
  const writers = new Set<SegmentWriter>()
  const segmentBytes = options.segmentBytes ?? 256 << 20

  const read = async (record: StoredRecord): Promise<Buffer> => {
    if (record.length === 0) return Buffer.alloc(0)
    let where = dir
    for (const w of writers) {
      if (!w.owns(record.segment)) continue
      await w.flush()
      where = w.dir
    }
    let handle = readers.get(record.segment)
    if (handle === undefined) {
      handle = open(path.join(where, record.segment), 'r')
      handle.catch(() => readers.delete(record.segment))
      readers.set(record.segment, handle)
    }
    const buf = Buffer.allocUnsafe(record.length)
    const { bytesRead } = await (await handle).read(buf, 0, record.length, record.offset)
    if (bytesRead !== record.length) throw new Error(`segment ${record.segment} is short: ${bytesRead} of ${record.length} bytes at ${record.offset}`)
    return buf
  }

  return {
    get committed() {
      return committed
    },
    invalid,
    createWriter(target = dir) {
      const writer = new SegmentWriter(target, committed.meta.generation + 1, segmentBytes)
      writers.add(writer)
      return writer
    },
    read,
    locate(record) {
      let where = dir
      for (const w of writers) if (w.owns(record.segment)) where = w.dir
      return path.join(where, record.segment)
    },
    async commit(next, writer) {
      const w = writer as SegmentWriter
      await compact(dir, next, w, read)
      await w.finish()
      await syncDirectory(dir)
      const values = encodeState(next)
      const batch = db.batch()
      for (const [key, value] of values) if (onDisk.get(key) !== value) batch.put(key, value)
      for (const key of onDisk.keys()) if (!values.has(key)) batch.del(key)
      await batch.write({ sync: true })
      onDisk.clear()
      for (const [key, value] of values) onDisk.set(key, value)
      committed = next
      writers.delete(w)
      for (const h of readers.values()) await h.then((x) => x.close()).catch(() => {})
      readers.clear()
      await removeSegmentsExcept(dir, referencedSegments(next))
    },
    async close() {
      for (const h of readers.values()) await h.then((x) => x.close()).catch(() => {})
      readers.clear()
      await db.close()
    },
  }
}

class SegmentWriter implements StoreWriter {
  private readonly names: string[] = []
  private handle: Promise<FileHandle> | undefined
  private readonly handles: Array<Promise<FileHandle>> = []
  private size = 0
  private pending = 0
  // Appends not handed to the file yet: written together (one writev per ~1 MiB, not one write per record).
  private queue: Buffer[] = []
  private queueStart = 0
  private queueBytes = 0
  private chain: Promise<void> = Promise.resolve()
  private failure: Error | undefined
  private waiters: Array<() => void> = []

  constructor(
    readonly dir: string,
    private readonly generation: number,
    private readonly segmentBytes: number,
  ) {}

  owns(segment: string): boolean {
    return this.names.includes(segment)
  }

  append(data: Buffer, count: number, sha256: string): StoredRecord {
    if (data.length === 0) return { ...EMPTY_RECORD, count, sha256 }
    if (this.handle === undefined || this.size >= this.segmentBytes) {
      this.writeQueue()
      const name = `seg-${this.generation}-${this.names.length}.dat`
      this.names.push(name)
      this.handle = open(path.join(this.dir, name), 'w')
      this.handle.catch(() => {})
      this.handles.push(this.handle)
      this.size = 0
      this.queueStart = 0
    }
    const record: StoredRecord = { segment: this.names.at(-1)!, offset: this.size, length: data.length, count, sha256 }
    this.size += data.length
    this.pending += data.length
    this.queue.push(data)
    this.queueBytes += data.length
    if (this.queueBytes >= WRITE_BYTES) this.writeQueue()
    return record
  }

  /** Hands what is queued to the current segment, after every earlier write. */
  private writeQueue(): void {
    if (this.queue.length === 0) return
    const buffers = this.queue
    const position = this.queueStart
    const bytes = this.queueBytes
    const handle = this.handle!
    this.queue = []
    this.queueStart += bytes
    this.queueBytes = 0
    this.chain = this.chain.then(async () => {
      try {
        if (this.failure === undefined) {
          const { bytesWritten } = await (await handle).writev(buffers, position)
          if (bytesWritten !== bytes) throw new Error(`short write to a segment: ${bytesWritten} of ${bytes} bytes`)
        }
      } catch (err) {
        this.failure ??= err as Error
      } finally {
        this.pending -= bytes
        if (this.pending < HIGH_WATER / 2) for (const wake of this.waiters.splice(0)) wake()
      }
    })
  }

  drain(): Promise<void> | undefined {
    if (this.failure !== undefined) return Promise.reject(this.failure)
    if (this.pending < HIGH_WATER) return undefined
    return new Promise<void>((resolve) => this.waiters.push(resolve)).then(() => {
      if (this.failure !== undefined) throw this.failure
    })
  }

  async flush(): Promise<void> {
    this.writeQueue()
    await this.chain
    if (this.failure !== undefined) throw this.failure
  }

  /** flush, fsync and close every segment. */
  async finish(): Promise<void> {
    await this.flush()
    for (const h of this.handles) {
      const handle = await h
      await handle.sync()
      await handle.close()
    }
    this.handles.length = 0
  }

  async discard(): Promise<void> {
    this.queue = []
    await this.chain
    for (const h of this.handles) await h.then((x) => x.close()).catch(() => {})
    this.handles.length = 0
    for (const name of this.names) await unlink(path.join(this.dir, name)).catch(() => {})
  }
}

/** Copies the live records of segments (not this run's) that are less than half live into `writer`, updating `next`. */
async function compact(dir: string, next: StoreState, writer: SegmentWriter, read: (r: StoredRecord) => Promise<Buffer>): Promise<void> {
  const live = new Map<string, number>()
  forEachRecord(next, (r) => {
    if (r.length > 0 && !writer.owns(r.segment)) live.set(r.segment, (live.get(r.segment) ?? 0) + r.length)
  })
  const sparse = new Set<string>()
  for (const [segment, bytes] of live) {
    const size = (await stat(path.join(dir, segment))).size
    if (bytes * 2 < size) sparse.add(segment)
  }
  if (sparse.size === 0) return
  const move = async <R extends StoredRecord>(records: R[]): Promise<R[]> => {
    const out = records.slice()
    for (let i = 0; i < out.length; i++) {
      const r = out[i]!
      if (!sparse.has(r.segment)) continue
      await writer.drain()
      out[i] = { ...r, ...writer.append(await read(r), r.count, r.sha256) }
    }
    return out
  }
  for (const [mount, records] of next.lines) next.lines.set(mount, await move(records))
  if (next.refs !== undefined) next.refs = await move(next.refs)
  if (next.outcomes !== undefined) next.outcomes = await move(next.outcomes)
}

async function removeSegmentsExcept(dir: string, keep: ReadonlySet<string>): Promise<void> {
  for (const name of await readdir(dir)) {
    if (SEGMENT_RE.test(name) && !keep.has(name)) await unlink(path.join(dir, name)).catch(() => {})
  }
}
