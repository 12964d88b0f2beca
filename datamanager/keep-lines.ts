import { EMPTY_SHA256, sha256hex } from '../shared/index-digests.js'
import type { StoredRecord, StoreWriter } from './index-store.js'

/** Lines just read in full: the stored record when they are the same bytes, else a new one. */
export function keepLines(writer: StoreWriter, bytes: Buffer, count: number, previous: StoredRecord | undefined): StoredRecord {
  const sha256 = bytes.length === 0 ? EMPTY_SHA256 : sha256hex(bytes)
  if (previous !== undefined && previous.sha256 === sha256 && previous.count === count) return previous
  return writer.append(bytes, count, sha256)
}
