import { createHash, randomBytes } from 'node:crypto'
import { type BigIntStats, constants, fstatSync, openSync } from 'node:fs'
import { unlink } from 'node:fs/promises'
import { KeepError, type KeepErrorCode } from '../../shared/errors.js'
import { closeFd, fdio } from './fd-io.js'
import { READ_CHUNK_SIZE } from './hashing-stream.js'
import { MAX_BLOCK_SIZE, type VolumeStats, createVolumeStats, tick } from './volume.js'

/** The file-system steps of the directory driver, as the fault hook sees them. */
export type FsOp =
  | 'open'
  | 'read'
  | 'write'
  | 'fsync'
  | 'rename'
  | 'unlink'
  | 'mkdir'
  | 'stat'
  | 'utimes'
  | 'readdir'
  | 'statfs'

/**
 * Test seam: called before each file-system step with the path involved; a
 * thrown error (e.g. `Object.assign(new Error('x'), { code: 'ENOSPC' })`)
 * stands for that step failing, and is mapped like a real one. The index
 * scan consults it once per block directory ('readdir'), not per file.
 */
export type FaultHook = (op: FsOp, path: string) => void | Promise<void>

/** Runs file-system steps, counts them (Keep's volume metrics) and maps their errors to KeepErrors. */
export class FsRunner {
  readonly stats: VolumeStats = createVolumeStats()

  constructor(
    readonly uuid: string,
    private readonly faults: FaultHook | undefined,
  ) {}

  /** `absent`: what ENOENT means here (a missing block, or a broken volume). */
  run<T>(op: FsOp, path: string, fn: () => Promise<T>, absent: KeepErrorCode = 'KEEP_BLOCK_NOT_FOUND'): Promise<T> {
    tick(this.stats.operations, op)
    if (this.faults) return this.runWithFaults(op, path, fn, absent)
    // A PUT takes about eight steps: one promise each, no async function around it.
    let step: Promise<T>
    try {
      step = fn()
    } catch (err) {
      return Promise.reject(this.map(err, op, path, absent))
    }
    return step.then(undefined, (err: unknown) => {
      throw this.map(err, op, path, absent)
    })
  }

  private async runWithFaults<T>(op: FsOp, path: string, fn: () => Promise<T>, absent: KeepErrorCode): Promise<T> {
    try {
      await this.faults?.(op, path)
      return await fn()
    } catch (err) {
      throw this.map(err, op, path, absent)
    }
  }

  /** Consults the fault hook alone, for a step taken synchronously elsewhere (the index scan's readdir). */
  async check(op: FsOp, path: string): Promise<void> {
    if (!this.faults) return
    try {
      await this.faults(op, path)
    } catch (err) {
      throw this.map(err, op, path, 'KEEP_IO')
    }
  }

  /** Like run(), but an absent path resolves undefined. */
  async optional<T>(op: FsOp, path: string, fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await this.run(op, path, fn)
    } catch (err) {
      if (err instanceof KeepError && err.code === 'KEEP_BLOCK_NOT_FOUND') return undefined
      throw err
    }
  }

  /**
   * ENOENT → `absent`, ENOSPC/EDQUOT → KEEP_FULL, anything else → KEEP_IO.
   * The message is what a client may see (`volume <uuid>: write failed:
   * ENOSPC`): never a path. The path rides along in `path` (and the cause) for the log.
   */
  map(err: unknown, op: FsOp, path: string, absent: KeepErrorCode = 'KEEP_BLOCK_NOT_FOUND'): KeepError {
    if (err instanceof KeepError) return err
    const errno = errnoOf(err)
    if ((errno !== 'ENOENT' || absent !== 'KEEP_BLOCK_NOT_FOUND') && errno !== 'ELOOP') tick(this.stats.errors, errno ?? 'EIO')
    const code: KeepErrorCode =
      errno === 'ENOENT' ? absent : errno === 'ENOSPC' || errno === 'EDQUOT' ? 'KEEP_FULL' : 'KEEP_IO'
    return withPath(new KeepError(code, `volume ${this.uuid}: ${op} failed: ${errno ?? 'I/O error'}`, { cause: err }), path)
  }

  /**
   * Makes renames and new entries in `dir` durable. The directory was just
   * written to, so opening it needs no disk: that runs inline, the fsync on
   * the thread pool.
   */
  async syncDir(dir: string): Promise<void> {
    const fd = await this.run('open', dir, async () => openSync(dir, 'r'), 'KEEP_IO')
    try {
      await this.run('fsync', dir, () => fdio.fsync(fd), 'KEEP_IO')
    } finally {
      closeFd(fd)
    }
  }

  /** Removes a file, ignoring one that is already gone; other failures are only worth a retry later. */
  async discard(path: string): Promise<void> {
    await this.optional('unlink', path, () => unlink(path)).catch(() => undefined)
  }
}

/** A KeepError that names, for the log only, the file it is about. */
export function withPath(err: KeepError, path: string): KeepError {
  return Object.assign(err, { path })
}

/**
 * How block files are opened: never through a symlink (O_NOFOLLOW fails with
 * ELOOP), and never waiting for a FIFO's writer or a device (O_NONBLOCK), so
 * a planted file cannot hold one of libuv's four file-system threads.
 */
const BLOCK_OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK

/** Only regular files are blocks: anything else at a block's path is a corrupt copy. */
export function notRegular(fs: FsRunner, path: string, what: string): KeepError {
  return withPath(new KeepError('KEEP_CORRUPT', `volume ${fs.uuid}: stored block is ${what}, not a regular file`), path)
}

/**
 * Opens a block file for reading and checks with fstat that it is a regular
 * file: a symlink, directory, FIFO or device → KEEP_CORRUPT (nothing is read
 * from it); absent → KEEP_BLOCK_NOT_FOUND. The caller owns the descriptor
 * and closes it once ({@link closeFd}).
 */
export async function openBlockFile(fs: FsRunner, path: string): Promise<{ fd: number; st: BigIntStats }> {
  let fd: number
  try {
    fd = await fs.run('open', path, () => fdio.open(path, BLOCK_OPEN_FLAGS))
  } catch (err) {
    if (errnoOf((err as Error).cause) === 'ELOOP') throw notRegular(fs, path, 'a symlink')
    throw err
  }
  try {
    const st = await fs.run('stat', path, async () => fstatSync(fd, { bigint: true }))
    if (!st.isFile()) throw notRegular(fs, path, st.isDirectory() ? 'a directory' : 'a special file')
    return { fd, st }
  } catch (err) {
    closeFd(fd)
    throw err
  }
}

export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** This process's part of temp names: random, so two processes never pick one name. */
const TEMP_PREFIX = randomBytes(6).toString('hex')
let tempCounter = 0

/**
 * `.<hash>.tmp-<random><n>`: hidden from scans by its leading dot, unique
 * without drawing random bytes per write (files are created with O_EXCL anyway).
 */
export function tempName(hash: string): string {
  return `.${hash}.tmp-${TEMP_PREFIX}${(tempCounter++).toString(36)}`
}

export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.includes('.tmp-')
}

const TRASH_RE = /^([0-9a-f]{32})\.trash\.(\d+)(?:\.(\d+))?$/

/** A trashed copy's name: `<hash>.trash.<deadline>` plus `.<n>` when that name is taken. */
export function trashName(hash: string, deadline: number, n: number): string {
  return n === 0 ? `${hash}.trash.${deadline}` : `${hash}.trash.${deadline}.${n}`
}

export function parseTrashName(name: string): { hash: string; deadline: number; n: number } | undefined {
  const m = TRASH_RE.exec(name)
  if (!m) return undefined
  return { hash: m[1] as string, deadline: Number(m[2]), n: Number(m[3] ?? 0) }
}

export type Comparison = 'identical' | 'corrupt' | 'collision'

/**
 * Compares a stored block with a verified candidate for the same hash, reading
 * both in step (never a whole file in memory). Equal bytes → identical;
 * otherwise the stored copy is corrupt unless it has a valid MD5 of `hash`.
 */
export async function compareStored(fs: FsRunner, storedPath: string, candidatePath: string, hash: string): Promise<Comparison> {
  let stored: number
  let storedSize: bigint
  try {
    ;({ fd: stored, st: { size: storedSize } } = await openBlockFile(fs, storedPath))
  } catch (err) {
    // A symlink, FIFO or directory planted as the block is never followed: it is replaced.
    if (err instanceof KeepError && err.code === 'KEEP_CORRUPT') return 'corrupt'
    throw err
  }
  let candidate: number | undefined
  try {
    candidate = await fs.run('open', candidatePath, () => fdio.open(candidatePath, 'r'), 'KEEP_IO')
    const opened = candidate
    const b = await fs.run('stat', candidatePath, async () => fstatSync(opened, { bigint: true }), 'KEEP_IO')
    let same = storedSize === b.size
    // Larger than any block: no need to read it to know it is not this one.
    if (storedSize > BigInt(MAX_BLOCK_SIZE)) return 'corrupt'
    const md5 = createHash('md5')
    const bufA = Buffer.allocUnsafe(READ_CHUNK_SIZE)
    const bufB = Buffer.allocUnsafe(READ_CHUNK_SIZE)
    for (let total = 0; ; ) {
      const n = await readFull(fs, stored, storedPath, bufA)
      if (n === 0) break
      total += n
      // A file that grows while it is read is not a block either.
      if (total > MAX_BLOCK_SIZE) return 'corrupt'
      md5.update(bufA.subarray(0, n))
      if (same) {
        const m = await readFull(fs, candidate, candidatePath, bufB)
        same = m === n && bufA.subarray(0, n).equals(bufB.subarray(0, n))
      }
    }
    if (same) return 'identical'
    return md5.digest('hex') === hash ? 'collision' : 'corrupt'
  } finally {
    closeFd(stored)
    if (candidate !== undefined) closeFd(candidate)
  }
}

/**
 * Reads from `fd`'s position into `buf` until at least `min` bytes (default:
 * all of it; at least one read) are there or the file ends; returns the bytes read. A regular
 * file answers a read short only at its end, so asking for one byte more
 * than expected with `min` = expected tells in one read whether it ends there.
 */
export async function readFull(fs: FsRunner, fd: number, path: string, buf: Buffer, min = buf.length): Promise<number> {
  let filled = 0
  do {
    const bytesRead = await fs.run('read', path, () => fdio.read(fd, buf.subarray(filled)))
    if (bytesRead === 0) break
    filled += bytesRead
  } while (filled < min)
  return filled
}
