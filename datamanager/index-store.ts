import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { Level } from 'level'
import { EMPTY_SHA256, INDEX_PREFIXES, PREFIX_COUNT } from '../shared/index-digests.js'
import { syncDirectory } from './atomic-file.js'

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
  /**
   * Makes `next` the committed state: copies the live records of mostly dead
   * segments forward, fsyncs `writer`'s segments, replaces the manifest in
   * one synced batch, then deletes the segments nothing refers to.
   */
  commit(next: StoreState, writer: StoreWriter): Promise<void>
  close(): Promise<void>
}

/** Where one stored record lives and what it holds. */
export interface StoredRecord {
  /** Segment file name; '' for an empty record (nothing to read). */
  segment: string
  offset: number
  length: number
  /** Index lines or referenced blocks in the record. */
  count: number
  /** sha256 hex of the record's bytes. */
  sha256: string
}

/**
 * The decisions of one prefix, with the replica mtimes on either side of the
 * cutoff they were made with: they hold for another cutoff as long as no
 * mtime lies between the two (`maxOld < cutoff <= minYoung`).
 */
export interface OutcomeRecord extends StoredRecord {
  /** The newest replica mtime older than the cutoff (trashable by age). */
  maxOld: bigint | undefined
  /** The oldest replica mtime not older than the cutoff. */
  minYoung: bigint | undefined
}

export interface CollectionsDigest {
  /** sha256 over the collection files' names, sizes and bytes and the config that shapes references. */
  digest: string
  files: number
  collections: number
  references: number
}

export interface StoredMeta {
  generation: number
  /** Servers, mounts, policy and decision code the outcomes were computed with (see `runFingerprint`). */
  fingerprint: string
  /** Set when the references are those of exactly these collection bytes. */
  collections: CollectionsDigest | undefined
  /** Mounts whose lines are stored, as `server/mount`. */
  mounts: string[]
}

export interface StoreState {
  meta: StoredMeta
  /** Mount uuid → one record per prefix. */
  lines: Map<string, StoredRecord[]>
  /** One record per prefix, or undefined when not stored. */
  refs: StoredRecord[] | undefined
  outcomes: OutcomeRecord[] | undefined
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

export const STORE_VERSION = 1
export const EMPTY_RECORD: StoredRecord = Object.freeze({ segment: '', offset: 0, length: 0, count: 0, sha256: EMPTY_SHA256 })
export const EMPTY_OUTCOME: OutcomeRecord = Object.freeze({ ...EMPTY_RECORD, maxOld: undefined, minYoung: undefined })

export function emptyState(): StoreState {
  return { meta: { generation: 0, fingerprint: '', collections: undefined, mounts: [] }, lines: new Map(), refs: undefined, outcomes: undefined }
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

function forEachRecord(state: StoreState, f: (r: StoredRecord) => void): void {
  for (const records of state.lines.values()) records.forEach(f)
  state.refs?.forEach(f)
  state.outcomes?.forEach(f)
}

function referencedSegments(state: StoreState): Set<string> {
  const out = new Set<string>()
  forEachRecord(state, (r) => {
    if (r.segment !== '') out.add(r.segment)
  })
  return out
}

async function removeSegmentsExcept(dir: string, keep: ReadonlySet<string>): Promise<void> {
  for (const name of await readdir(dir)) {
    if (SEGMENT_RE.test(name) && !keep.has(name)) await unlink(path.join(dir, name)).catch(() => {})
  }
}

// Manifest keys: `meta`; `l <mount> <prefix>`, `r <prefix>`, `o <prefix>` for non-empty records only.

function encodeRecord(r: StoredRecord): string {
  return `${r.segment} ${r.offset} ${r.length} ${r.count} ${r.sha256}`
}

function encodeOutcome(r: OutcomeRecord): string {
  return `${encodeRecord(r)} ${r.maxOld ?? '-'} ${r.minYoung ?? '-'}`
}

function isEmpty(r: StoredRecord): boolean {
  return r.length === 0 && r.count === 0 && r.sha256 === EMPTY_SHA256
}

function isEmptyOutcome(r: OutcomeRecord): boolean {
  return isEmpty(r) && r.maxOld === undefined && r.minYoung === undefined
}

export function encodeState(state: StoreState): Map<string, string> {
  const out = new Map<string, string>()
  const meta = { version: STORE_VERSION, ...state.meta, refs: state.refs !== undefined, outcomes: state.outcomes !== undefined }
  out.set('meta', JSON.stringify(meta))
  for (const [mount, records] of state.lines) {
    records.forEach((r, i) => {
      if (!isEmpty(r)) out.set(`l ${mount} ${INDEX_PREFIXES[i]}`, encodeRecord(r))
    })
  }
  state.refs?.forEach((r, i) => {
    if (!isEmpty(r)) out.set(`r ${INDEX_PREFIXES[i]}`, encodeRecord(r))
  })
  state.outcomes?.forEach((r, i) => {
    if (!isEmptyOutcome(r)) out.set(`o ${INDEX_PREFIXES[i]}`, encodeOutcome(r))
  })
  return out
}

const RECORD_RE = /^(seg-\d+-\d+\.dat|) (\d+) (\d+) (\d+) ([0-9a-f]{64})(?: (-|\d+) (-|\d+))?$/

function decodeRecord(value: string, key: string): OutcomeRecord {
  const m = RECORD_RE.exec(value)
  if (m === null) throw new Error(`manifest: ${key}: malformed record`)
  const bigOrUndefined = (s: string | undefined): bigint | undefined => (s === undefined || s === '-' ? undefined : BigInt(s))
  return { segment: m[1]!, offset: Number(m[2]), length: Number(m[3]), count: Number(m[4]), sha256: m[5]!, maxOld: bigOrUndefined(m[6]), minYoung: bigOrUndefined(m[7]) }
}

function decodeState(values: ReadonlyMap<string, string>): StoreState {
  const metaText = values.get('meta')
  if (metaText === undefined) {
    if (values.size > 0) throw new Error('manifest: records without meta')
    return emptyState()
  }
  const meta = JSON.parse(metaText) as StoredMeta & { version: number; refs: boolean; outcomes: boolean }
  if (meta.version !== STORE_VERSION) throw new Error(`manifest: version ${meta.version}, not ${STORE_VERSION}`)
  const state: StoreState = {
    meta: { generation: meta.generation, fingerprint: meta.fingerprint, collections: meta.collections ?? undefined, mounts: meta.mounts },
    lines: new Map(),
    refs: meta.refs ? new Array<StoredRecord>(PREFIX_COUNT).fill(EMPTY_RECORD) : undefined,
    outcomes: meta.outcomes ? new Array<OutcomeRecord>(PREFIX_COUNT).fill(EMPTY_OUTCOME) : undefined,
  }
  for (const key of meta.mounts) state.lines.set(key.slice(key.indexOf('/') + 1), new Array<StoredRecord>(PREFIX_COUNT).fill(EMPTY_RECORD))
  for (const [key, value] of values) {
    if (key === 'meta') continue
    const parts = key.split(' ')
    const prefix = parts.at(-1)!
    const i = parseInt(prefix, 16)
    if (prefix.length !== 3 || INDEX_PREFIXES[i] !== prefix) throw new Error(`manifest: ${key}: bad prefix`)
    const record = decodeRecord(value, key)
    if (parts[0] === 'l' && parts.length === 3 && state.lines.has(parts[1]!)) state.lines.get(parts[1]!)![i] = stripWindow(record)
    else if (parts[0] === 'r' && parts.length === 2 && state.refs !== undefined) state.refs[i] = stripWindow(record)
    else if (parts[0] === 'o' && parts.length === 2 && state.outcomes !== undefined) state.outcomes[i] = record
    else throw new Error(`manifest: ${key}: unexpected key`)
  }
  return state
}

function stripWindow(r: OutcomeRecord): StoredRecord {
  return { segment: r.segment, offset: r.offset, length: r.length, count: r.count, sha256: r.sha256 }
}
