import { createHash } from 'node:crypto'
import { constants, fstatSync } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { isHash } from '../../shared/hash.js'
import { type FsRunner, readFull } from './directory-fs.js'
import { closeFd, fdio } from './fd-io.js'
import { blockDirs } from './directory-scan.js'
import { READ_CHUNK_SIZE } from './hashing-stream.js'

export type { QuarantineOutcome } from './volume.js'

/**
 * `<hash>.quarantine.<unix-s>` plus `.<n>` when that name is taken. Not a
 * hash (so scans and reads never see it), not a trash name (so untrash and
 * emptyTrash leave it), no leading dot (so stale-temp cleanup keeps it).
 */
export function quarantineName(hash: string, seconds: number, n: number): string {
  return n === 0 ? `${hash}.quarantine.${seconds}` : `${hash}.quarantine.${seconds}.${n}`
}

/** The first quarantine name in `dir` that nothing holds yet. */
export async function freeQuarantinePath(fs: FsRunner, dir: string, hash: string, seconds: number): Promise<string> {
  for (let n = 0; ; n++) {
    const candidate = `${dir}/${quarantineName(hash, seconds, n)}`
    if (!(await fs.optional('stat', candidate, () => lstat(candidate)))) return candidate
  }
}

/**
 * Whether `path` holds a good copy of `hash`: a regular file (lstat, then
 * fstat of a descriptor opened without following links or blocking on a FIFO)
 * whose bytes have that MD5. Reads but changes nothing, mtime included.
 */
export async function checkStored(fs: FsRunner, path: string, hash: string): Promise<'good' | 'bad' | 'absent'> {
  const st = await fs.optional('stat', path, () => lstat(path))
  if (!st) return 'absent'
  if (!st.isFile()) return 'bad'
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK
  const fd = await fs.optional('open', path, () => fdio.open(path, flags))
  if (fd === undefined) return 'absent'
  try {
    const fst = await fs.run('stat', path, async () => fstatSync(fd), 'KEEP_IO')
    if (!fst.isFile()) return 'bad'
    const md5 = createHash('md5')
    const buf = Buffer.allocUnsafe(READ_CHUNK_SIZE)
    let size = 0
    for (;;) {
      const n = await readFull(fs, fd, path, buf)
      if (n === 0) break
      md5.update(buf.subarray(0, n))
      size += n
    }
    return md5.digest('hex') === hash && size === fst.size ? 'good' : 'bad'
  } finally {
    closeFd(fd)
  }
}

/**
 * Hashes whose block path is not a regular file, in hash order. The entry
 * types come from readdir (d_type; Node lstats when the file system does not
 * say), so nothing is opened or followed.
 */
export async function* scanIrregular(fs: FsRunner, root: string, prefix: string, signal: AbortSignal | undefined): AsyncGenerator<string> {
  for (const sub of await blockDirs(fs, root, prefix)) {
    signal?.throwIfAborted()
    const dir = `${root}/${sub}`
    const entries = (await fs.optional('readdir', dir, () => readdir(dir, { withFileTypes: true }))) ?? []
    const names = entries.filter((e) => !e.isFile() && isHash(e.name) && e.name.startsWith(prefix)).map((e) => e.name)
    for (const name of names.sort()) yield name
  }
}
