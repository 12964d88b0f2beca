import type { Readable } from 'node:stream'
import { KeepError, isKeepError } from '../shared/errors.js'
import type { ClusterConfig } from '../shared/config.js'
import type { Logger } from '../shared/logger.js'
import { mountOrder } from '../shared/rendezvous.js'
import { createSigner, type Signer } from '../shared/signer.js'
import type { Locator } from '../shared/locator.js'
import { mergeSorted } from '../shared/merge-sorted.js'
import type { IndexEntry } from '../shared/index-format.js'
import type { BlockStat, PrefixDigest, ReadResult } from './volumes/volume.js'
import type { Mount } from './mount.js'
import { readBuffers } from './volumes/buffer-pool.js'
import { abandon, firstChunk, ignore } from './first-chunk.js'

export interface KeepstoreOptions {
  uuid: string
  mounts: Mount[]
  cluster: ClusterConfig
  logger: Logger
  /** Milliseconds since the epoch; injected so tests control signatures and trash ages. */
  now?: () => number
}

export interface PutOptions {
  expectedSize?: number
  /** Storage classes wanted, one replica each; undefined/empty = any one mount. */
  classes?: string[]
  signal?: AbortSignal
}

export interface PutResult {
  size: number
  replicas: number
  classesConfirmed: Record<string, number>
}

/** How GET and HEAD read: the request's abort signal and the locator's size hint. */
export interface ReadOptions {
  /** Aborts the read (the client left): it stops at once and no mount is blamed. */
  signal?: AbortSignal | undefined
  /** The locator's size hint: a stored copy of another length is answered 502, before any byte. */
  size?: number | undefined
}

/** An opened block: the first chunk was already read (and verified, if it is the only one). */
export interface OpenedBlock extends BlockStat {
  mount: Mount
  first: Buffer | undefined
  rest: Readable
}

const NS_PER_MS = 1_000_000n
/** Entries per batch of a merged (several-mount) index. */
const INDEX_BATCH = 4096

async function* inBatches<T>(items: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = []
  for await (const item of items) {
    batch.push(item)
    if (batch.length === size) {
      yield batch
      batch = []
    }
  }
  if (batch.length > 0) yield batch
}

/** A read the client gave up on: nobody's fault, nobody to answer. */
function aborted(cause: unknown): KeepError {
  return new KeepError('KEEP_TIMEOUT', 'read aborted: the client left', { cause })
}

/** A volume's own trouble (another volume may do better), as opposed to the client's. */
function isMountFailure(err: unknown): boolean {
  return isKeepError(err, 'KEEP_IO') || isKeepError(err, 'KEEP_FULL') || isKeepError(err, 'KEEP_READ_ONLY')
}

/** The request body, noting whether anyone began to read it: an unread body can go to another volume. */
function untilRead(body: AsyncIterable<Buffer | Uint8Array>): { iterable: AsyncIterable<Buffer | Uint8Array>; readonly started: boolean } {
  const tracked = {
    started: false,
    iterable: {
      [Symbol.asyncIterator]: () => {
        tracked.started = true
        return body[Symbol.asyncIterator]()
      },
    },
  }
  return tracked
}

/**
 * The keepstore's core: blocks across mounts in rendezvous order, signatures,
 * storage classes, trash. It knows nothing about HTTP.
 */
export class Keepstore {
  readonly uuid: string
  readonly mounts: readonly Mount[]
  readonly cluster: ClusterConfig
  readonly signer: Signer | undefined
  readonly logger: Logger
  readonly now: () => number
  private readonly byUuid: Map<string, Mount>

  constructor(options: KeepstoreOptions) {
    this.uuid = options.uuid
    this.mounts = [...options.mounts].sort((a, b) => (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0))
    this.byUuid = new Map(this.mounts.map((m) => [m.uuid, m]))
    this.cluster = options.cluster
    this.logger = options.logger
    this.now = options.now ?? Date.now
    const c = options.cluster
    this.signer =
      c.blobSigning && c.blobSigningKey !== undefined
        ? createSigner({
            key: c.blobSigningKey,
            ttlSeconds: c.blobSigningTTLSeconds,
            maxClockSkewSeconds: Math.floor(c.maxClockSkewMs / 1000),
            now: this.now,
          })
        : undefined
  }

  mount(uuid: string): Mount | undefined {
    return this.byUuid.get(uuid)
  }

  /** Mounts in rendezvous order for this block (PROTOCOL.md §6). */
  orderedMounts(hash: string): Mount[] {
    return mountOrder(hash, this.mounts)
  }

  /** Permission to read (PROTOCOL.md §2), checked before any disk access. */
  checkRead(locator: Locator, token: string | undefined): void {
    this.signer?.verify(locator, token)
  }

  /** `<hash>+<size>`, signed for `token` when signing is on and a token was given. */
  locatorFor(hash: string, size: number, token: string | undefined): string {
    const bare = `${hash}+${size}`
    return this.signer && token ? this.signer.sign(bare, token) : bare
  }

  /** Nanosecond instant before which a block is older than blobSigningTTL. */
  trashCutoff(): bigint {
    return BigInt(this.now()) * NS_PER_MS - BigInt(this.cluster.blobSigningTTLSeconds) * 1_000_000_000n
  }

  /**
   * PUT (PROTOCOL.md §3, as Keep's BlockWrite). Without classes one mount
   * suffices; with classes, each requested class this server has gets one
   * mount (a mount with several of them counts for each), and the result
   * names only the classes confirmed. Only when no writable mount has any of
   * them → 507. Mounts are tried in rendezvous order, those already holding
   * the block first (they are only touched); a mount that fails before the
   * body was read is passed over for the next one. Further classes get a copy
   * made from the first replica written.
   */
  async put(hash: string, body: AsyncIterable<Buffer | Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const classes = options.classes?.length ? new Set(options.classes) : undefined
    const writable = this.orderedMounts(hash).filter((m) => m.allowWrite)
    const eligible = classes ? writable.filter((m) => m.storageClasses.some((c) => classes.has(c))) : writable
    if (eligible.length === 0) {
      throw new KeepError('KEEP_FULL', classes ? `no writable volume has storage class ${[...classes].join(', ')}` : 'no writable volume')
    }
    await (eligible.length === 1 ? eligible[0]!.refresh() : Promise.all(eligible.map((m) => m.refresh())))
    // With one mount there is nothing to reorder: the volume itself touches identical bytes.
    const held = eligible.length > 1 ? await Promise.all(eligible.map((m) => this.holds(m, hash))) : [false]
    const candidates = [...eligible.filter((_, i) => held[i]), ...eligible.filter((_, i) => !held[i])].filter((m) => m.state === 'ok')
    const result: PutResult = { size: 0, replicas: 0, classesConfirmed: {} }
    const todo = new Set(classes)
    const source = untilRead(body)
    let first: Mount | undefined
    const failures: unknown[] = []
    for (const m of candidates) {
      if (first && todo.size === 0) break
      if (classes && !m.storageClasses.some((c) => todo.has(c))) continue
      try {
        if (first) await this.copy(first, m, hash, result.size, options)
        else result.size = (await this.writeOn(m, hash, source.iterable, options)).size
        first ??= m
        this.confirm(result, m)
        for (const c of m.storageClasses) todo.delete(c)
      } catch (err) {
        // The client's faults (bad hash, size, abort) and a body already read end the PUT.
        if (!first && (!isMountFailure(err) || source.started)) throw err
        failures.push(err)
        this.logger.warn({ err, hash, mount: m.uuid }, first ? 'copy to a further storage class failed' : 'write failed, trying the next volume')
      }
    }
    if (!first) throw this.noMountError(eligible, failures)
    return result
  }

  /** Writes a block to one given mount (or the best writable one), as the pull worker does. */
  async writeTo(mountUuid: string | undefined, hash: string, body: AsyncIterable<Buffer | Uint8Array>, options: PutOptions = {}): Promise<Mount> {
    const mount = mountUuid ? this.requireMount(mountUuid) : await this.firstWritable(hash)
    if (!mount.allowWrite) throw new KeepError('KEEP_READ_ONLY', `volume ${mount.uuid} is read-only`)
    await this.writeOn(mount, hash, body, options)
    return mount
  }

  /**
   * A pull item's named target must take writes: unknown → KEEP_NOT_FOUND,
   * read-only → KEEP_READ_ONLY (Keep ignores such items; we fail them, with
   * that reason, before fetching a byte). Without a name there is nothing to check yet.
   */
  requireWritable(mountUuid: string | undefined): void {
    if (mountUuid === undefined) return
    const mount = this.requireMount(mountUuid)
    if (!mount.allowWrite) throw new KeepError('KEEP_READ_ONLY', `volume ${mount.uuid} is read-only`)
  }

  /** Whether a mount (or, without one, the mount a pull would write to) already holds the block. */
  async holdsOn(mountUuid: string | undefined, hash: string): Promise<boolean> {
    const mount = mountUuid ? this.requireMount(mountUuid) : await this.firstWritable(hash)
    return this.holds(mount, hash)
  }

  /**
   * Opens a block for GET: mounts in rendezvous order; a copy that is absent,
   * unreadable, of another length than the size hint, or fails its hash
   * before the first byte goes out is skipped.
   */
  async open(hash: string, options: ReadOptions = {}): Promise<OpenedBlock> {
    return this.eachCopy(hash, options, async (mount, r) => {
      const first = await firstChunk(r.stream)
      // Its consumer hears errors through its own listeners; this one only keeps a
      // rest nobody reads any more (the client left) from crashing the process.
      r.stream.on('error', ignore)
      return { hash, size: r.size, mtime: r.mtime, mount, first, rest: r.stream }
    })
  }

  /** HEAD: the block exists and its bytes verify on at least one mount. */
  async head(hash: string, options: ReadOptions = {}): Promise<BlockStat> {
    return this.eachCopy(hash, options, async (_mount, r) => {
      for await (const chunk of r.stream) readBuffers.give(chunk as Buffer) // hashed, and read by nobody else
      return { hash, size: r.size, mtime: r.mtime }
    })
  }

  /** TOUCH: mtime = now on the first mount (rendezvous order) holding it. */
  async touch(hash: string): Promise<BlockStat> {
    for (const mount of this.orderedMounts(hash)) {
      if (!mount.allowWrite) continue
      try {
        return await mount.volume.touch(hash)
      } catch (err) {
        // A non-regular file in a block's place (KEEP_CORRUPT) is no block to touch.
        if (!isKeepError(err, 'KEEP_BLOCK_NOT_FOUND') && !isKeepError(err, 'KEEP_CORRUPT')) throw err
      }
    }
    throw new KeepError('KEEP_BLOCK_NOT_FOUND', 'block not found')
  }

  /**
   * DELETE: trash the block on every trashable mount where it is older than the
   * TTL. A younger copy is left alone (still a success); absent from every
   * trashable mount → 404 (as Keep, which looks nowhere else).
   */
  async delete(hash: string): Promise<{ trashed: number; kept: number }> {
    if (!this.cluster.blobTrash) throw new KeepError('KEEP_METHOD_NOT_ALLOWED', 'trash is disabled (blobTrash: false)')
    let found = false
    let trashed = 0
    let kept = 0
    for (const mount of this.mounts) {
      if (!mount.allowTrash) continue // as Keep: a copy only there counts as absent (404)
      let stat: BlockStat
      try {
        stat = await mount.volume.stat(hash)
      } catch (err) {
        if (isKeepError(err, 'KEEP_BLOCK_NOT_FOUND') || isKeepError(err, 'KEEP_CORRUPT')) continue
        throw err
      }
      found = true
      if (await this.trashOn(mount, hash, { notNewerThan: this.trashCutoff() - 1n }, 'delete', stat.mtime)) trashed++
      else kept++
    }
    if (!found) throw new KeepError('KEEP_BLOCK_NOT_FOUND', 'block not found')
    return { trashed, kept }
  }

  /**
   * Trash under the volume's lock with the guards given (the volume re-checks
   * them at the moment of trashing). Returns whether it was trashed.
   */
  async trashOn(mount: Mount, hash: string, guards: { ifMtime?: bigint; notNewerThan?: bigint }, reason: string, seenMtime?: bigint): Promise<boolean> {
    const nowS = Math.floor(this.now() / 1000)
    const lifetimeS = Math.ceil(this.cluster.blobTrashLifetimeMs / 1000)
    const ok = await mount.volume.trash(hash, { ...guards, deadline: nowS + lifetimeS })
    if (ok) {
      this.logger.info(
        { audit: 'trash', hash, mount: mount.uuid, mtime: String(guards.ifMtime ?? seenMtime ?? ''), reason },
        'block trashed',
      )
      if (lifetimeS === 0) await mount.volume.emptyTrash(nowS)
    }
    return ok
  }

  /** Restores trashed copies on every mount that may trash (ours: also a read-only one with allowTrashWhenReadOnly). */
  async untrash(hash: string): Promise<number> {
    let restored = 0
    for (const mount of this.mounts) {
      if (!mount.allowTrash) continue
      try {
        await mount.volume.untrash(hash)
        restored++
        this.logger.info({ audit: 'untrash', hash, mount: mount.uuid }, 'block untrashed')
      } catch (err) {
        if (!isKeepError(err, 'KEEP_BLOCK_NOT_FOUND')) throw err
      }
    }
    if (restored === 0) throw new KeepError('KEEP_BLOCK_NOT_FOUND', 'no trashed copy of the block')
    return restored
  }

  /**
   * Index of every mount (or one), merged into ascending hash order: one entry
   * per stored copy, a batch at a time (so a listing costs no await per block).
   */
  index(prefix: string, mountUuid?: string, signal?: AbortSignal): AsyncIterable<IndexEntry[]> {
    const mounts = mountUuid ? [this.requireMount(mountUuid)] : this.mounts
    const options = signal ? { signal } : {}
    if (mounts.length === 1) return mounts[0]!.volume.indexBatches(prefix, options)
    const merged = mergeSorted(
      mounts.map((m) => m.volume.index(prefix, options)),
      (a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0),
    )
    return inBatches(merged, INDEX_BATCH)
  }

  /**
   * Per-prefix digests of one mount's index (GET /mounts/<uuid>/digests). A
   * mount whose disk is `failed` answers KEEP_UNAVAILABLE rather than a
   * listing a reader could skip re-reading on; a failing listing throws.
   */
  async digests(mountUuid: string, signal?: AbortSignal): Promise<PrefixDigest[]> {
    const mount = this.requireMount(mountUuid)
    if (mount.state === 'failed') throw new KeepError('KEEP_UNAVAILABLE', `volume ${mount.uuid} is failing`)
    return mount.volume.digests(signal ? { signal } : {})
  }

  /** Deletes trashed copies whose lifetime is over, on every mount that may trash (as Keep's emptier). */
  async emptyTrash(): Promise<number> {
    const nowS = Math.floor(this.now() / 1000)
    let deleted = 0
    for (const mount of this.mounts) {
      if (!mount.allowTrash) continue
      try {
        deleted += await mount.volume.emptyTrash(nowS)
      } catch (err) {
        mount.recordError(err)
        this.logger.error({ err, mount: mount.uuid }, 'emptying trash failed')
      }
    }
    return deleted
  }

  requireMount(uuid: string): Mount {
    const m = this.byUuid.get(uuid)
    if (!m) throw new KeepError('KEEP_NOT_FOUND', `no mount ${uuid} on this keepstore`)
    return m
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.mounts.map((m) => m.volume.close()))
  }

  /**
   * Tries `use` on each mount's copy in rendezvous order until one succeeds.
   * An abort ends the search at once and blames no mount; a copy whose length
   * differs from the size hint is not read at all.
   */
  private async eachCopy<T>(hash: string, options: ReadOptions, use: (mount: Mount, r: ReadResult) => Promise<T>): Promise<T> {
    const { signal, size } = options
    let lastError: unknown
    for (const mount of this.orderedMounts(hash)) {
      if (signal?.aborted) throw aborted(signal.reason)
      let r: ReadResult
      try {
        r = await mount.volume.read(hash, signal ? { signal } : {})
      } catch (err) {
        if (signal?.aborted) throw aborted(err)
        if (!isKeepError(err, 'KEEP_BLOCK_NOT_FOUND')) {
          lastError = err
          this.noteReadError(mount, hash, err)
        }
        continue
      }
      if (size !== undefined && r.size !== size) {
        abandon(r.stream)
        lastError = new KeepError('KEEP_CORRUPT', `stored block ${hash} has ${r.size} bytes, its size hint says ${size}`)
        this.logger.warn({ hash, mount: mount.uuid, stored: r.size, hint: size }, 'stored length differs from the size hint')
        continue
      }
      try {
        return await use(mount, r)
      } catch (err) {
        abandon(r.stream)
        if (signal?.aborted) throw aborted(err)
        lastError = err
        this.noteReadError(mount, hash, err)
      }
    }
    throw lastError ?? new KeepError('KEEP_BLOCK_NOT_FOUND', 'block not found')
  }

  private async firstWritable(hash: string): Promise<Mount> {
    const ordered = this.orderedMounts(hash).filter((m) => m.allowWrite)
    await Promise.all(ordered.map((m) => m.refresh()))
    const m = ordered.find((x) => x.state === 'ok')
    if (!m) throw this.noMountError(ordered)
    return m
  }

  private async holds(mount: Mount, hash: string): Promise<boolean> {
    try {
      await mount.volume.stat(hash)
      return true
    } catch (err) {
      if (isKeepError(err, 'KEEP_BLOCK_NOT_FOUND')) return false
      mount.recordError(err)
      return false
    }
  }

  private async writeOn(mount: Mount, hash: string, body: AsyncIterable<Buffer | Uint8Array>, options: PutOptions): Promise<BlockStat> {
    try {
      const r = await mount.volume.write(hash, body, {
        ...(options.expectedSize !== undefined ? { expectedSize: options.expectedSize } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      })
      mount.recordSuccess()
      return r
    } catch (err) {
      mount.recordError(err)
      throw err
    }
  }

  /** Copies the replica on `from` to `to` (a further storage class). */
  private async copy(from: Mount, to: Mount, hash: string, size: number, options: PutOptions): Promise<void> {
    const { stream } = await from.volume.read(hash, options.signal ? { signal: options.signal } : {})
    try {
      await this.writeOn(to, hash, stream, { ...options, expectedSize: size })
    } finally {
      abandon(stream) // closes the file when the write failed before reading it all
    }
  }

  private confirm(result: PutResult, mount: Mount): void {
    result.replicas += mount.replication
    for (const c of mount.storageClasses) result.classesConfirmed[c] = (result.classesConfirmed[c] ?? 0) + mount.replication
  }

  /**
   * Why no mount took a write (PROTOCOL.md §3): none writable, or every one
   * full → 507 (as Keep); otherwise they are failing → 500.
   */
  private noMountError(writable: Mount[], failures: unknown[] = []): KeepError {
    if (writable.length === 0) return new KeepError('KEEP_FULL', 'no writable volume')
    // A write that failed for want of space marked its mount full (Mount.recordError).
    if (writable.every((m) => m.state === 'full')) return new KeepError('KEEP_FULL', 'every writable volume is full')
    return new KeepError('KEEP_IO', 'every writable volume failed', { cause: failures[failures.length - 1] })
  }

  private noteReadError(mount: Mount, hash: string, err: unknown): void {
    if (isKeepError(err, 'KEEP_CORRUPT')) {
      mount.recordCorrupt()
      this.logger.error({ err, hash, mount: mount.uuid }, 'stored block is corrupt')
    } else {
      mount.recordError(err)
      this.logger.error({ err, hash, mount: mount.uuid }, 'read failed')
    }
  }
}
