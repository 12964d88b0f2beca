import { type BigIntStats, fstatSync, lstatSync, statSync } from 'node:fs'
import { lstat, mkdir, stat, statfs, unlink } from 'node:fs/promises'
import { hostname as osHostname } from 'node:os'
import { KeepError } from '../../shared/errors.js'
import { isHash } from '../../shared/hash.js'
import { KeyedMutex } from '../../shared/keyed-mutex.js'
import { claimRoot, removeStaleTemps } from './directory-claim.js'
import {
  type FaultHook,
  FsRunner,
  compareStored,
  errnoOf,
  notRegular,
  openBlockFile,
  parseTrashName,
  readFull,
  tempName,
  trashName,
} from './directory-fs.js'
import { blockDirs, dirEntries, scanDigests, scanIndex } from './directory-scan.js'
import { ListingCache } from './directory-listing.js'
import { BatchedWriter } from './batched-writer.js'
import { closeFd, fdio } from './fd-io.js'
import { READ_CHUNK_SIZE, consumeVerified, createVerifiedStream } from './hashing-stream.js'
import { POOLED_READ_MIN, readBuffers } from './buffer-pool.js'
import { type QuarantineOutcome, checkStored, freeQuarantinePath, scanIrregular } from './directory-quarantine.js'
import type { BlockStat, PrefixDigest, ReadResult, TrashOptions, Volume, VolumeStats, VolumeStatus, WriteOptions, WriteResult } from './volume.js'

export type { FaultHook, FsOp } from './directory-fs.js'

export interface DirectoryVolumeOptions {
  uuid: string
  /** The directory holding `<hash[0:3]>/<hash>` files; it must exist. */
  root: string
  readOnly?: boolean
  /** A read-only volume still trashes, untrashes and empties its trash. */
  allowTrashWhenReadOnly?: boolean
  /**
   * Clock for the mtimes that write and touch set, ns since the epoch. Default:
   * a write keeps the file system's own mtime, a touch uses the wall clock.
   * File systems take new mtimes at microsecond precision (whole seconds are exact).
   */
  now?: () => bigint
  /** First part of deviceId; default os.hostname(). */
  hostname?: string
  /** Fault injection for tests (ENOSPC, EIO): see {@link FaultHook}. */
  faults?: FaultHook
  /** How long the index cache may reuse a file's stat (config `indexRescanInterval`; default 24 h, 0 = never). */
  indexRescanIntervalMs?: number
  /** The index cache's clock, ms since the epoch (default Date.now); see {@link ListingCache}. */
  listingClock?: () => number
}

const DAY_MS = 24 * 3_600_000

/**
 * A volume in a directory on a local disk: `root/<hash[0:3]>/<hash>`, written
 * through a hidden temp file that is fsynced and renamed into place, trashed
 * by renaming to `<hash>.trash.<deadline>`.
 */
export function createDirectoryVolume(options: DirectoryVolumeOptions): Volume {
  return new DirectoryVolume(options)
}

class DirectoryVolume implements Volume {
  readonly driver = 'directory'
  readonly uuid: string
  readonly readOnly: boolean
  readonly allowTrashWhenReadOnly: boolean
  readonly stats: VolumeStats
  private readonly root: string
  private readonly now: (() => bigint) | undefined
  private readonly hostname: string
  private readonly fs: FsRunner
  private readonly locks = new KeyedMutex()
  private readonly knownDirs = new Set<string>()
  private readonly listings: ListingCache
  private knownDeviceId: string | undefined

  constructor(options: DirectoryVolumeOptions) {
    this.uuid = options.uuid
    this.root = options.root.replace(/(.)\/+$/, '$1')
    this.readOnly = options.readOnly ?? false
    this.allowTrashWhenReadOnly = options.allowTrashWhenReadOnly ?? false
    this.now = options.now
    this.hostname = options.hostname ?? osHostname()
    this.fs = new FsRunner(options.uuid, options.faults)
    this.stats = this.fs.stats
    this.listings = new ListingCache({ rescanIntervalMs: options.indexRescanIntervalMs ?? DAY_MS, now: options.listingClock ?? Date.now })
  }

  get deviceId(): string {
    if (this.knownDeviceId === undefined) {
      const st = statSync(this.root, { bigint: true, throwIfNoEntry: false })
      if (!st) return `${this.hostname}:unknown:${this.root}`
      this.knownDeviceId = `${this.hostname}:${st.dev}:${st.ino}`
    }
    return this.knownDeviceId
  }

  async open(): Promise<void> {
    let st: BigIntStats
    try {
      st = await stat(this.root, { bigint: true })
    } catch (err) {
      const what = errnoOf(err) === 'ENOENT' ? 'does not exist' : `cannot be read (${errnoOf(err) ?? String(err)})`
      throw new KeepError('KEEP_CONFIG', `volume ${this.uuid}: root ${this.root} ${what}`, { cause: err })
    }
    if (!st.isDirectory()) throw new KeepError('KEEP_CONFIG', `volume ${this.uuid}: root ${this.root} is not a directory`)
    this.knownDeviceId = `${this.hostname}:${st.dev}:${st.ino}`
    await claimRoot(this.fs, this.root, this.uuid, this.readOnly)
    if (!this.readOnly) await removeStaleTemps(this.fs, this.root)
  }

  /** Nothing to release: every operation opens and closes its own files. */
  async close(): Promise<void> {}

  async status(): Promise<VolumeStatus> {
    const s = await this.fs.run('statfs', this.root, () => statfs(this.root, { bigint: true }), 'KEEP_IO')
    return { freeBytes: Number(s.bavail * s.bsize), totalBytes: Number(s.blocks * s.bsize) }
  }

  /** A hidden temp file in the root (removed at start-up if a crash leaves it): write, fsync, remove. */
  async probe(): Promise<void> {
    this.assertWritable()
    const path = `${this.root}/${tempName('probe')}`
    const fd = await this.fs.run('open', path, () => fdio.open(path, 'wx'), 'KEEP_IO')
    try {
      await this.fs.run('write', path, () => fdio.write(fd, PROBE_BYTES), 'KEEP_IO')
      await this.fs.run('fsync', path, () => fdio.fsync(fd), 'KEEP_IO')
    } finally {
      closeFd(fd)
      await this.fs.discard(path)
    }
  }

  async read(hash: string, options: { signal?: AbortSignal } = {}): Promise<ReadResult> {
    const path = this.blockPath(hash)
    const { fd, st } = await openBlockFile(this.fs, path)
    const size = Number(st.size)
    let remaining = size
    let ended = false
    // The read under way, if any: the descriptor is closed only after it, so a read
    // still queued for the thread pool never lands on a number reused by another open.
    let reading: Promise<unknown> | undefined
    const next = async (): Promise<Buffer | null> => {
      if (ended) return null
      // Never past the size fstat gave. The read that reaches it asks for one byte
      // more: getting it tells a file that grew, a short read that it ends there.
      const want = Math.min(READ_CHUNK_SIZE, remaining)
      const last = want === remaining
      const ask = last ? want + 1 : want
      const buf = ask >= POOLED_READ_MIN ? readBuffers.take().subarray(0, ask) : Buffer.allocUnsafe(ask)
      let n: number
      try {
        n = await readFull(this.fs, fd, path, buf, want)
      } catch (err) {
        readBuffers.give(buf)
        throw err
      }
      this.stats.inBytes += n
      if (n > remaining) throw new KeepError('KEEP_CORRUPT', `volume ${this.uuid}: stored block ${hash} grew while it was read`)
      remaining -= n
      ended = n === 0 || (last && remaining === 0)
      if (n > 0) return buf.subarray(0, n)
      readBuffers.give(buf)
      return null
    }
    const stream = createVerifiedStream(
      {
        next: () => {
          const r = next()
          reading = r
          return r
        },
        close: async () => {
          await reading?.catch(() => undefined)
          closeFd(fd)
        },
      },
      { hash, size, signal: options.signal, mapError: (err) => this.fs.map(err, 'read', path, 'KEEP_IO') },
    )
    return { hash, size, mtime: st.mtimeNs, stream }
  }

  /** lstat: a symlink planted as a block is never followed (it is KEEP_CORRUPT, as any non-regular file). */
  async stat(hash: string): Promise<BlockStat> {
    const path = this.blockPath(hash)
    const st = await this.fs.run('stat', path, () => lstat(path, { bigint: true }))
    if (!st.isFile()) throw notRegular(this.fs, path, st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a directory' : 'a special file')
    return { hash, size: Number(st.size), mtime: st.mtimeNs }
  }

  async write(hash: string, source: AsyncIterable<Buffer | Uint8Array>, options: WriteOptions = {}): Promise<WriteResult> {
    this.assertWritable()
    this.blockPath(hash)
    const dir = this.dirOf(hash)
    await this.ensureDir(dir)
    const temp = `${dir}/${tempName(hash)}`
    const openTemp = (): Promise<number> => this.fs.run('open', temp, () => fdio.open(temp, 'wx'), 'KEEP_IO')
    const fd = await openTemp().catch(async (err: unknown) => {
      // The directory was known to exist; if someone removed it, make it again once.
      if (!this.knownDirs.delete(dir)) throw err
      await this.ensureDir(dir)
      return openTemp()
    })
    let settled = false
    const writer = new BatchedWriter((chunks) => this.writeChunks(fd, temp, chunks))
    try {
      try {
        await consumeVerified(source, {
          hash,
          expectedSize: options.expectedSize,
          signal: options.signal,
          sink: (chunk) => writer.push(chunk),
        })
        await writer.end()
        const t = this.nowSeconds()
        if (t !== undefined) await this.fs.run('utimes', temp, () => fdio.futimes(fd, t), 'KEEP_IO')
        await this.fs.run('fsync', temp, () => fdio.fsync(fd), 'KEEP_IO')
      } finally {
        await writer.settled()
        // Once fsync succeeded the bytes are safe; a failing close changes nothing.
        closeFd(fd)
      }
      const result = await this.changing(hash, () => this.commit(hash, temp))
      settled = true
      return result
    } finally {
      if (!settled) await this.fs.discard(temp)
    }
  }

  async touch(hash: string): Promise<BlockStat> {
    this.assertWritable()
    return this.changing(hash, () => this.touchLocked(hash))
  }

  async trash(hash: string, options: TrashOptions): Promise<boolean> {
    this.assertTrashable()
    return this.changing(hash, async () => {
      const { mtime } = await this.stat(hash)
      if (options.ifMtime !== undefined && mtime !== options.ifMtime) return false
      if (options.notNewerThan !== undefined && mtime > options.notNewerThan) return false
      const dir = this.dirOf(hash)
      const deadline = Math.floor(options.deadline)
      let target = ''
      for (let n = 0; !target; n++) {
        const candidate = `${dir}/${trashName(hash, deadline, n)}`
        if (!(await this.fs.optional('stat', candidate, () => lstat(candidate)))) target = candidate
      }
      const path = this.blockPath(hash)
      await this.fs.run('rename', path, () => fdio.rename(path, target))
      await this.fs.syncDir(dir)
      return true
    })
  }

  async untrash(hash: string): Promise<BlockStat> {
    this.assertTrashable()
    return this.changing(hash, async () => {
      const dir = this.dirOf(hash)
      const copies = []
      for (const name of await dirEntries(this.fs, dir)) {
        const parsed = parseTrashName(name)
        if (parsed?.hash !== hash) continue
        const path = `${dir}/${name}`
        const st = await this.fs.optional('stat', path, () => lstat(path, { bigint: true }))
        if (st?.isFile()) copies.push({ ...parsed, path, mtime: st.mtimeNs })
      }
      if (copies.length === 0) throw new KeepError('KEEP_BLOCK_NOT_FOUND', `block ${hash} is not trashed on volume ${this.uuid}`)
      const live = await this.stat(hash).catch((err: unknown) => {
        if (err instanceof KeepError && err.code === 'KEEP_BLOCK_NOT_FOUND') return undefined
        throw err
      })
      if (live) return live
      copies.sort((a, b) => a.deadline - b.deadline || (a.mtime < b.mtime ? -1 : a.mtime > b.mtime ? 1 : a.n - b.n))
      const newest = copies[copies.length - 1] as (typeof copies)[number]
      const path = this.blockPath(hash)
      await this.fs.run('rename', newest.path, () => fdio.rename(newest.path, path))
      await this.fs.syncDir(dir)
      return this.stat(hash)
    })
  }

  async emptyTrash(nowSeconds: number): Promise<number> {
    if (this.readOnly && !this.allowTrashWhenReadOnly) return 0
    let deleted = 0
    for (const sub of await blockDirs(this.fs, this.root)) {
      const dir = `${this.root}/${sub}`
      for (const name of await dirEntries(this.fs, dir)) {
        const parsed = parseTrashName(name)
        if (!parsed || parsed.deadline > nowSeconds) continue
        const path = `${dir}/${name}`
        const gone = await this.locks.run(parsed.hash, () =>
          this.fs.optional('unlink', path, () => unlink(path).then(() => true)),
        )
        if (gone) deleted++
      }
    }
    return deleted
  }

  async *index(prefix: string, options: { signal?: AbortSignal } = {}): AsyncIterable<BlockStat> {
    // A plain loop: `yield*` over an array costs twice as much per item in an async generator.
    for await (const batch of this.indexBatches(prefix, options)) for (const stat of batch) yield stat
  }

  indexBatches(prefix: string, options: { signal?: AbortSignal } = {}): AsyncIterable<BlockStat[]> {
    return scanIndex(this.fs, this.listings, this.root, prefix, options.signal)
  }

  digests(options: { signal?: AbortSignal } = {}): Promise<PrefixDigest[]> {
    return scanDigests(this.fs, this.listings, this.root, options.signal)
  }

  async quarantine(hash: string): Promise<QuarantineOutcome> {
    this.assertWritable()
    const path = this.blockPath(hash)
    return this.changing(hash, async () => {
      const verdict = await checkStored(this.fs, path, hash)
      if (verdict !== 'bad') return verdict
      const dir = this.dirOf(hash)
      const target = await freeQuarantinePath(this.fs, dir, hash, Math.floor(this.nowSeconds() ?? Date.now() / 1000))
      await this.fs.run('rename', path, () => fdio.rename(path, target))
      await this.fs.syncDir(dir)
      return 'quarantined'
    })
  }

  irregular(prefix: string, options: { signal?: AbortSignal } = {}): AsyncIterable<string> {
    return scanIrregular(this.fs, this.root, prefix, options.signal)
  }

  /**
   * Runs a change to `hash` under its lock; whatever it did (even when it
   * failed part-way), the index cache takes the block's stat again next time.
   */
  private changing<T>(hash: string, change: () => Promise<T>): Promise<T> {
    return this.locks.run(hash, async () => {
      try {
        return await change()
      } finally {
        this.listings.forget(hash)
      }
    })
  }

  /** Under the hash's lock: moves a verified temp file into place, unless the volume already has these bytes. */
  private async commit(hash: string, temp: string): Promise<WriteResult> {
    const path = this.blockPath(hash)
    // Usually absent: a sync stat that returns undefined costs far less than an ENOENT error object.
    if (await this.fs.run('stat', path, async () => lstatSync(path, { throwIfNoEntry: false }))) {
      const comparison = await compareStored(this.fs, path, temp, hash)
      if (comparison === 'identical') {
        await this.fs.discard(temp)
        return { ...(await this.touchLocked(hash)), outcome: 'touched' }
      }
      if (comparison === 'collision') {
        throw new KeepError('KEEP_HASH_COLLISION', `volume ${this.uuid} holds different bytes with MD5 ${hash}`)
      }
    }
    await this.fs.run('rename', temp, () => fdio.rename(temp, path), 'KEEP_IO')
    await this.fs.syncDir(this.dirOf(hash))
    // Just renamed into place: its inode is in memory, a stat needs no disk.
    const st = await this.fs.run('stat', path, async () => lstatSync(path, { bigint: true }))
    return { hash, size: Number(st.size), mtime: st.mtimeNs, outcome: 'written' }
  }

  /** Through an opened, fstat-checked descriptor: utimes on the path would follow a planted symlink. */
  private async touchLocked(hash: string): Promise<BlockStat> {
    const path = this.blockPath(hash)
    const t = this.nowSeconds() ?? Date.now() / 1000
    const { fd } = await openBlockFile(this.fs, path)
    try {
      await this.fs.run('utimes', path, () => fdio.futimes(fd, t))
      const st = await this.fs.run('stat', path, async () => fstatSync(fd, { bigint: true }))
      return { hash, size: Number(st.size), mtime: st.mtimeNs }
    } finally {
      closeFd(fd)
    }
  }

  /** One writev for a batch of chunks; a short write finishes with plain writes. */
  private async writeChunks(fd: number, path: string, chunks: Buffer[]): Promise<void> {
    const total = chunks.reduce((n, c) => n + c.length, 0)
    const written = await this.fs.run('write', path, () => fdio.writev(fd, chunks), 'KEEP_IO')
    this.stats.outBytes += written
    if (written < total) await this.writeAll(fd, path, Buffer.concat(chunks).subarray(written))
  }

  private async writeAll(fd: number, path: string, chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length; ) {
      const written = await this.fs.run('write', path, () => fdio.write(fd, chunk.subarray(offset)), 'KEEP_IO')
      this.stats.outBytes += written
      offset += written
    }
  }

  /** Creates `dir` if needed; a new directory's entry in the root is made durable too. */
  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return // at most 4096 prefix directories: no mkdir per PUT
    const created = await this.fs.run(
      'mkdir',
      dir,
      () =>
        mkdir(dir).then(
          () => true,
          (err: unknown) => {
            if (errnoOf(err) === 'EEXIST') return false
            throw err
          },
        ),
      'KEEP_IO',
    )
    if (created) await this.fs.syncDir(this.root)
    this.knownDirs.add(dir)
  }

  /** The injected clock in (float) seconds, as utimes takes it; undefined without one. */
  private nowSeconds(): number | undefined {
    if (!this.now) return undefined
    const ns = this.now()
    return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9
  }

  private dirOf(hash: string): string {
    return `${this.root}/${hash.slice(0, 3)}`
  }

  /** Paths are built from the hash, so it is checked here even though callers validate it. */
  private blockPath(hash: string): string {
    if (!isHash(hash)) throw new KeepError('KEEP_INVALID_LOCATOR', `not a block hash: ${JSON.stringify(hash)}`)
    return `${this.root}/${hash.slice(0, 3)}/${hash}`
  }

  private assertWritable(): void {
    if (this.readOnly) throw new KeepError('KEEP_READ_ONLY', `volume ${this.uuid} is read-only`)
  }

  private assertTrashable(): void {
    if (!this.allowTrashWhenReadOnly) this.assertWritable()
  }
}

const PROBE_BYTES = Buffer.from('keep volume probe\n')
