import { open, rename, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'

/**
 * A file written in full or not at all: bytes go to a temporary file beside
 * the target, which is fsynced, renamed over the target, and the directory
 * fsynced. Readers (operators, monitoring) never see a half-written report
 * or lost-blocks list, even across a crash.
 */
export interface AtomicWriter {
  /** Appends text; resolves once it is buffered or written. */
  write(text: string): Promise<void>
  /** fsync, rename over the target, fsync the directory. */
  commit(): Promise<void>
  /** Removes the temporary file; the target keeps its previous content. */
  abort(): Promise<void>
}

const FLUSH_CHARS = 256 * 1024

export async function createAtomicWriter(file: string): Promise<AtomicWriter> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`)
  const handle: FileHandle = await open(tmp, 'w', 0o644)
  let pending = ''
  let closed = false
  const flush = async (): Promise<void> => {
    if (pending === '') return
    const text = pending
    pending = ''
    await handle.write(text)
  }
  return {
    async write(text) {
      pending += text
      if (pending.length >= FLUSH_CHARS) await flush()
    },
    async commit() {
      await flush()
      await handle.sync()
      await handle.close()
      closed = true
      await rename(tmp, file)
      await syncDirectory(path.dirname(file))
    },
    async abort() {
      if (!closed) await handle.close().catch(() => {})
      closed = true
      await unlink(tmp).catch(() => {})
    },
  }
}

/** Writes `text` to `file` atomically (see {@link createAtomicWriter}). */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const writer = await createAtomicWriter(file)
  try {
    await writer.write(text)
    await writer.commit()
  } catch (err) {
    await writer.abort()
    throw err
  }
}

/** fsync a directory (its new and renamed entries), where the file system allows it. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic.
  } finally {
    await handle.close()
  }
}
