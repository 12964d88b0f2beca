import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { listCollectionFiles } from './collections.js'

/** The collections' content as of now: their digest, and what to compare after a scan. */
export interface CollectionsContent {
  /** sha256 over `salt` and, per file in scan order, its name, size and bytes. */
  digest: string
  /** Each file's name, size, inode and times (ns), taken before hashing: unchanged after a scan means the scan read these bytes. */
  stamp: string
}

/**
 * Hashes every collection file a scan would read (PROTOCOL §7), so that a
 * run can tell its references are those of the last committed run without
 * parsing a byte. `salt` holds the config that shapes references
 * (`defaultReplication`, `maxRecordBytes`). Undefined when the source cannot
 * be read (the scan then says why) or `signal` aborts.
 */
export async function digestCollections(source: string, salt: string, signal?: AbortSignal): Promise<CollectionsContent | undefined> {
  try {
    const stamp = await stampCollections(source)
    const files = await listCollectionFiles(source)
    const hash = createHash('sha256').update(`${salt}\n`)
    for (const { file, size } of files) {
      hash.update(`${path.basename(file)}\0${size}\0`)
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) })) hash.update(chunk as Buffer)
    }
    return { digest: hash.digest('hex'), stamp }
  } catch {
    return undefined
  }
}

/** {@link CollectionsContent.stamp} of `source` now ('' when unreadable). */
export async function stampCollections(source: string): Promise<string> {
  try {
    const parts: string[] = []
    for (const { file } of await listCollectionFiles(source)) {
      const s = await stat(file, { bigint: true })
      parts.push(`${path.basename(file)} ${s.size} ${s.ino} ${s.mtimeNs} ${s.ctimeNs}`)
    }
    return parts.join('\n')
  } catch {
    return ''
  }
}
