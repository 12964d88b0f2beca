import { readdir } from 'node:fs/promises'
import type { FsRunner } from './directory-fs.js'
import type { ListingCache } from './directory-listing.js'
import { EMPTY_SHA256, PREFIXES } from './prefix-digests.js'
import type { BlockStat, PrefixDigest } from './volume.js'

const SUBDIR_RE = /^[0-9a-f]{3}$/

/** The `<hash[0:3]>` directories under `root` that can hold hashes starting with `prefix`, sorted. */
export async function blockDirs(fs: FsRunner, root: string, prefix = ''): Promise<string[]> {
  if (prefix.length >= 3) {
    const only = prefix.slice(0, 3)
    return SUBDIR_RE.test(only) ? [only] : []
  }
  const names = await fs.run('readdir', root, () => readdir(root), 'KEEP_IO')
  return names.filter((n) => SUBDIR_RE.test(n) && n.startsWith(prefix)).sort()
}

/** Names in one block directory; a directory that does not exist is empty. */
export async function dirEntries(fs: FsRunner, dir: string): Promise<string[]> {
  return (await fs.optional('readdir', dir, () => readdir(dir))) ?? []
}

/** How long a scan may hold the event loop before it lets other work run. */
const SLICE_MS = 8

/** Lets other work run when the scan has held the event loop for SLICE_MS. */
class Slicer {
  private start = performance.now()

  async pause(): Promise<void> {
    if (performance.now() - this.start <= SLICE_MS) return
    await new Promise<void>((resolve) => setImmediate(resolve))
    this.start = performance.now()
  }
}

/**
 * Live blocks in hash order, one batch per block directory. Per directory one synchronous listing (readdir,
 * then lstats as one batch, or the cached stats the listing cache may reuse):
 * measured on 100 k blocks, sync calls are ~1.4× as fast as async readdir and
 * ~6× as fast as per-file async stats; the scan yields to the event loop
 * whenever it has held it for SLICE_MS, so other requests are not starved.
 */
export async function* scanIndex(
  fs: FsRunner,
  cache: ListingCache,
  root: string,
  prefix: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<BlockStat[]> {
  const slicer = new Slicer()
  for (const sub of await blockDirs(fs, root, prefix)) {
    signal?.throwIfAborted()
    const dir = `${root}/${sub}`
    await fs.check('readdir', dir)
    const { names, stats } = cache.list(fs, dir, sub)
    // Copied out before yielding: the volume's own changes may mark the cached stats stale meanwhile.
    const batch: BlockStat[] = []
    for (let i = 0; i < names.length; i++) {
      const size = stats.sizes[i] as number
      const hash = names[i] as string
      if (size >= 0 && (prefix.length <= 3 || hash.startsWith(prefix))) batch.push({ hash, size, mtime: stats.mtimes[i] as bigint })
    }
    if (batch.length > 0) yield batch
    await slicer.pause()
  }
}

/** Per-prefix digests (see Volume.digests) from one fresh listing of every block directory. */
export async function scanDigests(fs: FsRunner, cache: ListingCache, root: string, signal: AbortSignal | undefined): Promise<PrefixDigest[]> {
  const present = new Set(await blockDirs(fs, root))
  cache.retain(present)
  const slicer = new Slicer()
  const out: PrefixDigest[] = []
  for (const prefix of PREFIXES) {
    if (!present.has(prefix)) {
      out.push({ prefix, blocks: 0, sha256: EMPTY_SHA256 })
      continue
    }
    signal?.throwIfAborted()
    const dir = `${root}/${prefix}`
    await fs.check('readdir', dir)
    const listing = cache.list(fs, dir, prefix)
    out.push({ prefix, blocks: listing.stats.blocks, sha256: cache.digest(listing) })
    await slicer.pause()
  }
  return out
}
