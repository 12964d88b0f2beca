import type { Readable } from 'node:stream'

/** Largest block a volume accepts (64 MiB). */
export const MAX_BLOCK_SIZE = 64 * 1024 * 1024

/** One live block on one volume. `mtime` is nanoseconds since the epoch, exact. */
export interface BlockStat {
  hash: string
  size: number
  mtime: bigint
}

export interface WriteResult extends BlockStat {
  /** `written`: new bytes landed; `touched`: identical bytes were already there, only mtime changed. */
  outcome: 'written' | 'touched'
}

export interface ReadResult extends BlockStat {
  /**
   * The block's bytes. The stream hashes as it goes and withholds its last chunk
   * when the MD5 is wrong, failing with KEEP_CORRUPT instead: a consumer never
   * sees a complete body of corrupt data. It holds an open file: consume it
   * to the end or destroy() it.
   */
  stream: Readable
}

export interface WriteOptions {
  /** Size hint from the locator: a body of another length fails KEEP_SIZE_MISMATCH. */
  expectedSize?: number
  /** Aborting fails the write with the signal's reason if it is a KeepError, else KEEP_TIMEOUT; nothing is stored. */
  signal?: AbortSignal
}

export interface TrashOptions {
  /** Trash only when the stored mtime equals this exactly (ns). */
  ifMtime?: bigint
  /** Trash only when the stored mtime is at or before this instant (ns since the epoch). */
  notNewerThan?: bigint
  /** When the trashed copy may be deleted for good, in unix seconds. */
  deadline: number
}

export interface VolumeStatus {
  freeBytes: number
  totalBytes: number
}

/**
 * Keep's per-volume counters (`arvados_keepstore_volume_*`), kept by the
 * driver as plain numbers and read at scrape time: the I/O path adds to a
 * number and allocates nothing for them.
 */
export interface VolumeStats {
  /** Operations by name: the directory driver's file-system steps (open, stat, read, write, fsync, rename, …). */
  operations: Record<string, number>
  /**
   * Failed operations by errno (EIO, ENOSPC, …), and `corrupt` for a stored
   * copy that is no block (fails its hash, or is not a regular file). A
   * missing file (ENOENT) is how absence is found, and a symlink (ELOOP) is
   * counted as corrupt: neither counts as an errno here.
   */
  errors: Record<string, number>
  /** Bytes read from the volume (Keep's direction "in") and written to it ("out"). */
  inBytes: number
  outBytes: number
}

export function createVolumeStats(): VolumeStats {
  return { operations: {}, errors: {}, inBytes: 0, outBytes: 0 }
}

/** Adds `n` to one named counter of a stats record. */
export function tick(counters: Record<string, number>, name: string, n = 1): void {
  counters[name] = (counters[name] ?? 0) + n
}

/** Reading slice: what GET/HEAD and the pull source side need. */
export interface BlockReader {
  /**
   * Opens a live block for reading. Not found (absent, or only trashed) →
   * KEEP_BLOCK_NOT_FOUND, thrown before any byte is produced.
   */
  read(hash: string, options?: { signal?: AbortSignal }): Promise<ReadResult>
  /** Size and mtime of a live block, without reading it; absent → KEEP_BLOCK_NOT_FOUND. */
  stat(hash: string): Promise<BlockStat>
}

/** Writing slice: what PUT and the pull worker need. */
export interface BlockWriter {
  /**
   * Streams `source` into the volume under `hash`. The bytes are hashed while
   * they are written; only when the MD5 equals `hash`, the length matches
   * `expectedSize` (if given) and the data is durable does the block become
   * visible (no partial block is ever visible, even after a crash).
   *
   * If the volume already holds identical bytes it only touches them
   * (`outcome: 'touched'`). If it holds *different* bytes with a valid MD5 of
   * `hash`, fails KEEP_HASH_COLLISION; stored bytes that fail their own hash are
   * replaced. Other failures: KEEP_HASH_MISMATCH, KEEP_SIZE_MISMATCH,
   * KEEP_TOO_LARGE (> 64 MiB), KEEP_FULL (disk full), KEEP_READ_ONLY, KEEP_IO.
   * KEEP_TOO_LARGE and a body longer than `expectedSize` fail as soon as the
   * excess arrives: the volume stops iterating `source` (with `for await`
   * semantics, so a Readable source is destroyed). An error thrown by `source`
   * itself propagates unchanged. Writes, touches and trashes of one hash on
   * one volume are serialised by the volume's per-hash lock.
   */
  write(hash: string, source: AsyncIterable<Buffer | Uint8Array>, options?: WriteOptions): Promise<WriteResult>
  /** Sets a live block's mtime to now. Absent → KEEP_BLOCK_NOT_FOUND; read-only → KEEP_READ_ONLY. */
  touch(hash: string): Promise<BlockStat>
}

/** Trash slice: what the trash worker, DELETE and untrash need. */
export interface BlockTrasher {
  /**
   * Moves a live block to the trash, checking the guards *under the per-hash
   * lock* at the moment of trashing. Returns false (and changes nothing) when a
   * guard refuses: the mtime differs from `ifMtime`, or it is newer than
   * `notNewerThan`. Absent → KEEP_BLOCK_NOT_FOUND; read-only without
   * allowTrashWhenReadOnly → KEEP_READ_ONLY.
   */
  trash(hash: string, options: TrashOptions): Promise<boolean>
  /**
   * Restores the newest trashed copy (latest deadline, then newest mtime) as the
   * live block, keeping its mtime. None trashed → KEEP_BLOCK_NOT_FOUND. When a
   * live copy exists already it stays as it is (the trashed copies wait for
   * emptyTrash) and its stat is returned. Read-only without allowTrashWhenReadOnly → KEEP_READ_ONLY.
   */
  untrash(hash: string): Promise<BlockStat>
  /**
   * Deletes for good every trashed copy whose deadline is at or before `nowSeconds`.
   * Never touches live blocks (a PUT after a trash makes a live copy emptying leaves alone).
   * Returns how many copies were deleted (always 0 on a read-only volume that does not allow trash).
   */
  emptyTrash(nowSeconds: number): Promise<number>
}

/** What `index(prefix)` lists for one 3-hex prefix, in brief. */
export interface PrefixDigest {
  prefix: string
  /** How many lines. */
  blocks: number
  /** sha256 hex of exactly the index lines (`formatIndexLine`), in order. */
  sha256: string
}

/** Index slice: what GET /index and the mounts endpoints need. */
export interface BlockIndexer {
  /**
   * Live blocks whose hash starts with `prefix` (0–32 lowercase hex), in
   * ascending hash order. A block that is gone (deleted, trashed) by the time
   * the listing starts is never listed, whatever a driver caches.
   */
  index(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<BlockStat>
  /**
   * The same entries as `index(prefix)`, in the same order, a non-empty batch
   * at a time (the directory driver: one block directory): what the index
   * endpoints stream, without an await per block.
   */
  indexBatches(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<BlockStat[]>
  /**
   * One entry per 3-hex prefix, `000` to `fff` in order, each describing what
   * `index(prefix)` would list now (PROTOCOL.md §3, GET /mounts/<uuid>/digests):
   * a fresh listing under the same rules as `index`. A failure is thrown, never
   * answered from a cache.
   */
  digests(options?: { signal?: AbortSignal }): Promise<PrefixDigest[]>
}

/** `quarantined`: moved out of sight; `good`: the copy verified under the lock and stays; `absent`: nothing there. */
export type QuarantineOutcome = 'quarantined' | 'good' | 'absent'

/** Scrub slice: what the scrubber needs besides reading and the index. */
export interface BlockQuarantiner {
  /**
   * Re-checks the copy stored under `hash` *under the per-hash lock* (a
   * regular file, its MD5 equal to `hash`) and only when it fails moves it
   * out of sight: a quarantined copy is kept for inspection but is listed by
   * no index and found by no read, stat, trash, untrash or emptyTrash, so
   * the block counts as missing here and is replicated again. A good copy
   * (say a PUT replaced a bad one since the caller looked) is left exactly as
   * it is, mtime included. Every call writes nothing else. Read-only →
   * KEEP_READ_ONLY; a failing disk → KEEP_IO (nothing moved).
   */
  quarantine(hash: string): Promise<QuarantineOutcome>
  /**
   * Hashes (starting with `prefix`, ascending) whose block path holds
   * something other than a regular file: a symlink, directory, FIFO or
   * device. The index never lists them and reads refuse them; this is how
   * the scrubber finds them to quarantine. Never opens or follows them.
   */
  irregular(prefix: string, options?: { signal?: AbortSignal }): AsyncIterable<string>
}

/**
 * A place blocks live: a directory on a disk, or memory. Drivers pass the one
 * conformance suite in test/helpers/volume-suite.ts.
 */
export interface Volume extends BlockReader, BlockWriter, BlockTrasher, BlockIndexer, BlockQuarantiner {
  readonly uuid: string
  readonly driver: 'directory' | 'memory'
  /** Refuses writes, touches, trash, untrash and quarantine with KEEP_READ_ONLY (but see allowTrashWhenReadOnly). */
  readonly readOnly: boolean
  /**
   * As Keep's AllowTrashWhenReadOnly: a read-only volume still trashes,
   * untrashes and empties its trash; every other write stays refused.
   */
  readonly allowTrashWhenReadOnly: boolean
  /**
   * Identifies the storage behind the volume so one disk reached twice is seen
   * once: `<hostname>:<st_dev>:<st_ino>` of a directory root, `memory:<uuid>`.
   */
  readonly deviceId: string
  /** Keep's counters for this volume (see {@link VolumeStats}). */
  readonly stats: VolumeStats
  /** Start-up checks and recovery (directory: root exists, id file, stale temp files). */
  open(): Promise<void>
  status(): Promise<VolumeStatus>
  /**
   * Proves the volume takes writes again: writes, fsyncs and removes a small
   * hidden file (never a block, never listed). Fails as a write would
   * (KEEP_IO, KEEP_FULL, KEEP_READ_ONLY). A mount marked `failed` comes back
   * only when this succeeds, never because a read did (PROTOCOL.md §5).
   */
  probe?(): Promise<void>
  close(): Promise<void>
}
