import { randomInt } from 'node:crypto'
import { open } from 'node:fs/promises'
import { KeepError } from '../shared/errors.js'

/** A collection record as the datamanager reads it (PROTOCOL §7; datamanager/collections.ts). */
export interface CollectionRecord {
  uuid: string
  manifest_text: string
  /** null = the cluster's defaultReplication (and follows it when it changes). */
  replication_desired: number | null
  /** null = ["default"]. */
  storage_classes_desired: string[] | null
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'

/** An Arvados-style collection uuid: `<cluster>-4zz18-<15 random characters>`. */
export function collectionUuid(clusterId: string): string {
  let tail = ''
  for (let i = 0; i < 15; i++) tail += ALPHABET[randomInt(ALPHABET.length)]
  return `${clusterId}-4zz18-${tail}`
}

/**
 * Appends one record as one line to a `.jsonl` file (created if missing), in
 * a single write, then fsyncs. The datamanager reads the file while we may
 * write it: it sees the whole line or none of it. If the file's last line
 * lacks its newline, one is written first so our record stays a line of its
 * own (the broken line before it still makes the datamanager refuse to trash,
 * which is the safe outcome).
 */
export async function appendCollection(file: string, record: CollectionRecord): Promise<void> {
  if (!file.endsWith('.jsonl')) {
    throw new KeepError('KEEP_BAD_REQUEST', `--collection ${file}: must be a .jsonl file (the datamanager reads .json files as one document)`)
  }
  let handle
  try {
    handle = await open(file, 'a+')
  } catch (err) {
    throw new KeepError('KEEP_BAD_REQUEST', `--collection ${file}: ${(err as Error).message}`)
  }
  try {
    const { size } = await handle.stat()
    let lead = ''
    if (size > 0) {
      const last = Buffer.alloc(1)
      await handle.read(last, 0, 1, size - 1)
      if (last[0] !== 0x0a) lead = '\n'
    }
    await handle.write(`${lead}${JSON.stringify(record)}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
}
