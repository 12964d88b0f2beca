import { type BigIntStats, lstatSync, readdirSync, statSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { formatIndexLine } from '../../shared/index-format.js'
import { isHash } from '../../shared/hash.js'
import { type FsRunner, errnoOf } from './directory-fs.js'
import { tick } from './volume.js'

/** A directory whose mtime (and ctime) is younger than this may still change without its mtime changing. */
const SETTLED_NS = 2_000_000_000n

/**
 * The stats of one prefix directory's hash-named entries, in ascending name
 * order. `sizes[i] < 0`: not a regular file (a symlink, directory, FIFO, or
 * gone between readdir and lstat), never listed; NaN: to be taken again.
 */
export interface DirStats {
  sizes: Float64Array
  mtimes: BigInt64Array
  /** Regular files among the entries. */
  blocks: number
  /** sha256 hex of the directory's index lines, computed when first asked for. */
  digest: string | undefined
}

/** One listing of a prefix directory: the names readdir gave just now, and their stats. */
export interface DirListing {
  names: string[]
  stats: DirStats
}

/** The names are kept as 16 binary bytes each (a third of a string's memory). */
interface CachedDir extends DirStats {
  ino: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  /** The names, in order: what a fresh readdir is compared with. */
  key: Buffer
  /** When it was listed, ms on the cache's clock. */
  listedAt: number
}

export interface ListingCacheOptions {
  /** A cached stat older than this is never reused (0: stats are never reused). */
  rescanIntervalMs: number
  /** Milliseconds since the epoch (the 2 s rule compares it with directory mtimes). */
  now: () => number
}

const EMPTY: DirListing = { names: [], stats: { sizes: new Float64Array(0), mtimes: new BigInt64Array(0), blocks: 0, digest: undefined } }

/**
 * The directory driver's index cache (memory only). Every listing re-reads
 * the directory (readdir), so a name that is gone is never listed. The stats
 * of the last listing are reused only when the directory is the same inode
 * with the same mtime and ctime as then, those times were at least 2 s old
 * then (a change within the file system's timestamp granularity could leave
 * them as they were), the names are exactly the names listed then, and the
 * listing is younger than `rescanIntervalMs`. The volume's own touches,
 * writes, trashes and untrashes mark their entry stale ({@link forget}): a
 * touch changes a file's mtime but not its directory's. A file changed
 * behind the keepstore's back without a directory change (say `touch` by
 * hand) is seen at the latest after `rescanIntervalMs`.
 */
export class ListingCache {
  private readonly dirs = new Map<string, CachedDir>()

  constructor(private readonly options: ListingCacheOptions) {}

  /**
   * Lists `dir` (the block directory `sub` of a volume) synchronously. An
   * absent directory is empty; any other failure throws (mapped by `fs`),
   * whatever the cache holds.
   */
  list(fs: FsRunner, dir: string, sub: string): DirListing {
    try {
      return this.listOrThrow(fs, dir, sub)
    } catch (err) {
      this.dirs.delete(sub)
      throw err
    }
  }

  private listOrThrow(fs: FsRunner, dir: string, sub: string): DirListing {
    let st: BigIntStats | undefined
    let all: string[]
    tick(fs.stats.operations, 'readdir')
    try {
      st = statSync(dir, { bigint: true, throwIfNoEntry: false }) // what readdir reads, a symlinked directory included
      all = st ? readdirSync(dir) : []
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw fs.map(err, 'readdir', dir, 'KEEP_IO')
      st = undefined
      all = []
    }
    if (!st) {
      this.dirs.delete(sub)
      return EMPTY
    }
    const { names, key } = blockNames(all, sub)
    const now = this.options.now()
    const cached = this.dirs.get(sub)
    if (
      cached !== undefined &&
      cached.ino === st.ino &&
      cached.mtimeNs === st.mtimeNs &&
      cached.ctimeNs === st.ctimeNs &&
      now - cached.listedAt < this.options.rescanIntervalMs &&
      cached.key.equals(key)
    ) {
      let restated = false
      for (let i = 0; i < names.length; i++) {
        if (!Number.isNaN(cached.sizes[i])) continue
        statInto(fs, dir, cached, i, names[i] as string)
        restated = true
      }
      if (restated) cached.blocks = countBlocks(cached.sizes)
      return { names, stats: cached }
    }
    const fresh: CachedDir = {
      sizes: new Float64Array(names.length),
      mtimes: new BigInt64Array(names.length),
      blocks: 0,
      digest: undefined,
      ino: st.ino,
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs,
      key,
      listedAt: now,
    }
    for (let i = 0; i < names.length; i++) statInto(fs, dir, fresh, i, names[i] as string)
    fresh.blocks = countBlocks(fresh.sizes)
    const newest = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs
    if (this.options.rescanIntervalMs > 0 && BigInt(Math.floor(now)) * 1_000_000n - newest >= SETTLED_NS) this.dirs.set(sub, fresh)
    else this.dirs.delete(sub)
    return { names, stats: fresh }
  }

  /** The sha256 of a listing's index lines (cached with the listing). */
  digest({ names, stats }: DirListing): string {
    if (stats.digest === undefined) {
      let text = ''
      for (let i = 0; i < names.length; i++) {
        const size = stats.sizes[i] as number
        if (size >= 0) text += formatIndexLine({ hash: names[i] as string, size, mtime: stats.mtimes[i] as bigint })
      }
      stats.digest = createHash('sha256').update(text, 'latin1').digest('hex')
    }
    return stats.digest
  }

  /**
   * The volume changed `hash` itself (write, touch, trash, untrash,
   * quarantine): its cached stat is taken again at the next listing. Call it
   * once the change is made, before it is acknowledged.
   */
  forget(hash: string): void {
    const cached = this.dirs.get(hash.slice(0, 3))
    if (!cached) return
    cached.digest = undefined
    const i = indexOfKey(cached.key, Buffer.from(hash, 'hex'))
    if (i >= 0) cached.sizes[i] = Number.NaN
  }

  /** Drops what is cached for block directories not in `present` (they are gone). */
  retain(present: ReadonlySet<string>): void {
    for (const sub of this.dirs.keys()) if (!present.has(sub)) this.dirs.delete(sub)
  }
}

/**
 * The block names among a directory's entries, sorted, and as binary. Only
 * names of this directory's prefix: a misplaced one is read from nowhere, so
 * never listed. A key that does not encode back to the same text tells that
 * some name is not lowercase hex (rare: then filter exactly).
 */
function blockNames(all: string[], sub: string): { names: string[]; key: Buffer } {
  let names: string[] = []
  for (const n of all) if (n.length === 32 && n.startsWith(sub)) names.push(n)
  names.sort()
  const joined = names.join('')
  let key = Buffer.from(joined, 'hex')
  if (key.toString('hex') !== joined) {
    names = names.filter(isHash)
    key = Buffer.from(names.join(''), 'hex')
  }
  return { names, key }
}

/** lstat of one entry into slot `i`: gone since readdir (trashed) or not a regular file → -1 (never listed, never followed). */
function statInto(fs: FsRunner, dir: string, stats: DirStats, i: number, name: string): void {
  const path = `${dir}/${name}`
  let st: BigIntStats | undefined
  tick(fs.stats.operations, 'stat')
  try {
    st = lstatSync(path, { bigint: true, throwIfNoEntry: false })
  } catch (err) {
    throw fs.map(err, 'stat', path, 'KEEP_IO')
  }
  const isBlock = st?.isFile() === true
  stats.sizes[i] = isBlock ? Number(st!.size) : -1
  stats.mtimes[i] = isBlock ? st!.mtimeNs : 0n
  stats.digest = undefined
}

function countBlocks(sizes: Float64Array): number {
  let n = 0
  for (const size of sizes) if (size >= 0) n++
  return n
}

/** Binary search for a 16-byte name in a key of sorted 16-byte names. */
function indexOfKey(key: Buffer, name: Buffer): number {
  let lo = 0
  let hi = key.length / 16 - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const c = key.compare(name, 0, 16, mid * 16, mid * 16 + 16)
    if (c === 0) return mid
    if (c < 0) lo = mid + 1
    else hi = mid - 1
  }
  return -1
}
