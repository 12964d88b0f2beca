import { lstatSync, readdirSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { isHash } from '../../shared/hash.js'
import { type FsRunner, errnoOf } from './directory-fs.js'
import { type BlockStat, tick } from './volume.js'

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

/**
 * Live blocks in hash order. Per directory: one readdirSync, then
 * synchronous stats as one batch. Measured on 100 k blocks this is ~1.4× as
 * fast as async readdir and ~6× as fast as per-file async stats; the scan
 * yields to the event loop (setImmediate) whenever it has held it for
 * SLICE_MS, so other requests are not starved.
 */
export async function* scanIndex(
  fs: FsRunner,
  root: string,
  prefix: string,
  signal: AbortSignal | undefined,
): AsyncGenerator<BlockStat> {
  let sliceStart = performance.now()
  for (const sub of await blockDirs(fs, root, prefix)) {
    signal?.throwIfAborted()
    const dir = `${root}/${sub}`
    let names: string[]
    tick(fs.stats.operations, 'readdir')
    try {
      names = readdirSync(dir)
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') continue
      throw fs.map(err, 'readdir', dir, 'KEEP_IO')
    }
    // A plain loop: `yield*` over an array costs twice as much per item in an async generator.
    for (const stat of statBatch(fs, dir, names.filter((n) => isHash(n) && n.startsWith(prefix)).sort())) yield stat
    if (performance.now() - sliceStart > SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      sliceStart = performance.now()
    }
  }
}

function statBatch(fs: FsRunner, dir: string, names: string[]): BlockStat[] {
  const batch: BlockStat[] = []
  tick(fs.stats.operations, 'stat', names.length)
  for (const name of names) {
    const path = `${dir}/${name}`
    let st
    try {
      st = lstatSync(path, { bigint: true, throwIfNoEntry: false })
    } catch (err) {
      throw fs.map(err, 'stat', path, 'KEEP_IO')
    }
    // Trashed between readdir and stat: not live any more. lstat: only regular files are blocks
    // (a symlink, directory or FIFO is never listed, never followed).
    if (st?.isFile()) batch.push({ hash: name, size: Number(st.size), mtime: st.mtimeNs })
  }
  return batch
}
