import { totalmem } from 'node:os'
import { KeepError } from '../../shared/errors.js'
import { md5hex } from '../../shared/hash.js'
import { KeyedMutex } from '../../shared/keyed-mutex.js'
import { READ_CHUNK_SIZE, consumeVerified, createVerifiedStream } from './hashing-stream.js'
import { type BlockStat, type ReadResult, type TrashOptions, type Volume, type VolumeStatus, type WriteOptions, type WriteResult, createVolumeStats, tick } from './volume.js'
import type { PrefixDigest, QuarantineOutcome } from './volume.js'
import { digestSorted } from './prefix-digests.js'

export interface MemoryVolumeOptions {
  uuid: string
  readOnly?: boolean
  /** A read-only volume still trashes, untrashes and empties its trash. */
  allowTrashWhenReadOnly?: boolean
  /** Clock for mtimes, ns since the epoch. Default: wall clock, strictly increasing. */
  now?: () => bigint
  /** Bytes the volume may hold (live and trashed); a write beyond it fails KEEP_FULL. Default: the host's RAM. */
  capacity?: number
}

/** A memory volume, plus the one test hook a disk gives for free: bit rot. */
export interface MemoryVolume extends Volume {
  /** Flips a bit in the stored copy of `hash` (an empty block gains a byte); mtime is kept. */
  corruptForTest(hash: string): void
}

interface Stored {
  data: Buffer
  mtime: bigint
}

interface Trashed extends Stored {
  deadline: number
}

/**
 * A real driver with the directory driver's semantics, kept in a Map: for
 * tests, demos and clusters on one machine. Its contents end with the process.
 */
export function createMemoryVolume(options: MemoryVolumeOptions): MemoryVolume {
  return new MemoryVolumeImpl(options)
}

/** Wall clock in ns that never repeats: ties are broken by counting up. */
export function createMonotonicClock(): () => bigint {
  let last = 0n
  return () => {
    const wall = BigInt(Date.now()) * 1_000_000n
    last = wall > last ? wall : last + 1n
    return last
  }
}

class MemoryVolumeImpl implements MemoryVolume {
  readonly driver = 'memory'
  readonly uuid: string
  readonly readOnly: boolean
  readonly allowTrashWhenReadOnly: boolean
  readonly deviceId: string
  /** Operations are named for the method called (read, write, stat, touch, trash, untrash, index). */
  readonly stats = createVolumeStats()
  private readonly now: () => bigint
  private readonly capacity: number
  private readonly live = new Map<string, Stored>()
  private readonly trashed = new Map<string, Trashed[]>()
  private readonly locks = new KeyedMutex()
  private usedBytes = 0
  /** Quarantined copies, kept (and counted as used) as a disk keeps them. */
  private readonly quarantined: Stored[] = []

  constructor(options: MemoryVolumeOptions) {
    this.uuid = options.uuid
    this.readOnly = options.readOnly ?? false
    this.allowTrashWhenReadOnly = options.allowTrashWhenReadOnly ?? false
    this.deviceId = `memory:${options.uuid}`
    this.now = options.now ?? createMonotonicClock()
    this.capacity = options.capacity ?? totalmem()
  }

  async open(): Promise<void> {}

  async close(): Promise<void> {}

  async status(): Promise<VolumeStatus> {
    return { freeBytes: Math.max(0, this.capacity - this.usedBytes), totalBytes: this.capacity }
  }

  /** Memory takes writes whenever the volume is writable. */
  async probe(): Promise<void> {
    this.assertWritable()
  }

  async read(hash: string, options: { signal?: AbortSignal } = {}): Promise<ReadResult> {
    tick(this.stats.operations, 'read')
    const { data, mtime } = this.require(hash)
    let offset = 0
    const stream = createVerifiedStream(
      {
        next: async () => {
          if (offset >= data.length) return null
          const chunk = data.subarray(offset, offset + READ_CHUNK_SIZE)
          offset += chunk.length
          this.stats.inBytes += chunk.length
          return chunk
        },
        close: async () => {},
      },
      { hash, size: data.length, signal: options.signal },
    )
    return { hash, size: data.length, mtime, stream }
  }

  async stat(hash: string): Promise<BlockStat> {
    tick(this.stats.operations, 'stat')
    return this.statOf(hash, this.require(hash))
  }

  async write(hash: string, source: AsyncIterable<Buffer | Uint8Array>, options: WriteOptions = {}): Promise<WriteResult> {
    this.assertWritable()
    tick(this.stats.operations, 'write')
    const chunks: Buffer[] = []
    await consumeVerified(source, {
      hash,
      expectedSize: options.expectedSize,
      signal: options.signal,
      sink: (chunk) => {
        chunks.push(Buffer.from(chunk))
      },
    })
    const data = Buffer.concat(chunks)
    return this.locks.run(hash, async () => {
      const existing = this.live.get(hash)
      if (existing?.data.equals(data)) {
        existing.mtime = this.now()
        return { ...this.statOf(hash, existing), outcome: 'touched' }
      }
      if (existing && md5hex(existing.data) === hash) {
        throw new KeepError('KEEP_HASH_COLLISION', `volume ${this.uuid} holds different bytes with MD5 ${hash}`)
      }
      const growth = data.length - (existing?.data.length ?? 0)
      if (this.usedBytes + growth > this.capacity) throw new KeepError('KEEP_FULL', `volume ${this.uuid} is full`)
      const stored = { data, mtime: this.now() }
      this.live.set(hash, stored)
      this.usedBytes += growth
      this.stats.outBytes += data.length
      return { ...this.statOf(hash, stored), outcome: 'written' }
    })
  }

  async touch(hash: string): Promise<BlockStat> {
    this.assertWritable()
    tick(this.stats.operations, 'touch')
    return this.locks.run(hash, async () => {
      const stored = this.require(hash)
      stored.mtime = this.now()
      return this.statOf(hash, stored)
    })
  }

  async trash(hash: string, options: TrashOptions): Promise<boolean> {
    this.assertTrashable()
    tick(this.stats.operations, 'trash')
    return this.locks.run(hash, async () => {
      const stored = this.require(hash)
      if (options.ifMtime !== undefined && stored.mtime !== options.ifMtime) return false
      if (options.notNewerThan !== undefined && stored.mtime > options.notNewerThan) return false
      this.live.delete(hash)
      const copies = this.trashed.get(hash) ?? []
      copies.push({ ...stored, deadline: Math.floor(options.deadline) })
      this.trashed.set(hash, copies)
      return true
    })
  }

  async untrash(hash: string): Promise<BlockStat> {
    this.assertTrashable()
    tick(this.stats.operations, 'untrash')
    return this.locks.run(hash, async () => {
      const copies = this.trashed.get(hash)
      if (!copies?.length) throw this.notFound(hash, 'trashed')
      const live = this.live.get(hash)
      if (live) return this.statOf(hash, live)
      let newest = 0
      copies.forEach((c, i) => {
        const best = copies[newest] as Trashed
        if (c.deadline > best.deadline || (c.deadline === best.deadline && c.mtime >= best.mtime)) newest = i
      })
      const [restored] = copies.splice(newest, 1) as [Trashed]
      if (copies.length === 0) this.trashed.delete(hash)
      const stored = { data: restored.data, mtime: restored.mtime }
      this.live.set(hash, stored)
      return this.statOf(hash, stored)
    })
  }

  async emptyTrash(nowSeconds: number): Promise<number> {
    if (this.readOnly && !this.allowTrashWhenReadOnly) return 0
    let deleted = 0
    for (const hash of [...this.trashed.keys()]) {
      await this.locks.run(hash, async () => {
        const copies = this.trashed.get(hash) ?? []
        const kept = copies.filter((c) => c.deadline > nowSeconds)
        for (const c of copies) if (c.deadline <= nowSeconds) this.usedBytes -= c.data.length
        deleted += copies.length - kept.length
        if (kept.length) this.trashed.set(hash, kept)
        else this.trashed.delete(hash)
      })
    }
    return deleted
  }

  async *index(prefix: string, options: { signal?: AbortSignal } = {}): AsyncIterable<BlockStat> {
    tick(this.stats.operations, 'index')
    const hashes = [...this.live.keys()].filter((h) => h.startsWith(prefix)).sort()
    for (const hash of hashes) {
      options.signal?.throwIfAborted()
      const stored = this.live.get(hash)
      if (stored) yield this.statOf(hash, stored)
    }
  }

  async *indexBatches(prefix: string, options: { signal?: AbortSignal } = {}): AsyncIterable<BlockStat[]> {
    const batch: BlockStat[] = []
    for await (const stat of this.index(prefix, options)) {
      batch.push(stat)
      if (batch.length === 4096) yield batch.splice(0)
    }
    if (batch.length > 0) yield batch
  }

  async digests(options: { signal?: AbortSignal } = {}): Promise<PrefixDigest[]> {
    options.signal?.throwIfAborted()
    const hashes = [...this.live.keys()].sort()
    return digestSorted(hashes.map((hash) => this.statOf(hash, this.live.get(hash) as Stored)))
  }

  async quarantine(hash: string): Promise<QuarantineOutcome> {
    this.assertWritable()
    return this.locks.run(hash, async () => {
      const stored = this.live.get(hash)
      if (!stored) return 'absent'
      if (md5hex(stored.data) === hash) return 'good'
      this.live.delete(hash)
      this.quarantined.push(stored)
      return 'quarantined'
    })
  }

  /** Memory holds nothing but byte strings. */
  async *irregular(): AsyncIterable<string> {}

  corruptForTest(hash: string): void {
    const stored = this.require(hash)
    const data = Buffer.from(stored.data)
    if (data.length === 0) {
      stored.data = Buffer.from([0])
      this.usedBytes += 1
      return
    }
    data[data.length - 1] = (data[data.length - 1] as number) ^ 1
    stored.data = data
  }

  private require(hash: string): Stored {
    const stored = this.live.get(hash)
    if (!stored) throw this.notFound(hash, 'stored')
    return stored
  }

  private notFound(hash: string, what: string): KeepError {
    return new KeepError('KEEP_BLOCK_NOT_FOUND', `block ${hash} is not ${what} on volume ${this.uuid}`)
  }

  private assertWritable(): void {
    if (this.readOnly) throw new KeepError('KEEP_READ_ONLY', `volume ${this.uuid} is read-only`)
  }

  private assertTrashable(): void {
    if (!this.allowTrashWhenReadOnly) this.assertWritable()
  }

  private statOf(hash: string, stored: Stored): BlockStat {
    return { hash, size: stored.data.length, mtime: stored.mtime }
  }
}
