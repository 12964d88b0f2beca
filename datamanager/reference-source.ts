import { EMPTY_SHA256, INDEX_PREFIXES, sha256hex } from '../shared/index-digests.js'
import type { StoredRecord } from './index-store.js'
import { createReferenceParser, parseReferenceLines, type ReferencedBlock, type ReferenceSpill } from './references.js'

/** The referenced blocks of one 3-hex prefix. */
export interface PrefixReferences {
  sha256: string
  count: number
  /** True when they are exactly the last committed run's references of the prefix. */
  unchanged: boolean
  /** Where they are stored already, when they are. */
  record: StoredRecord | undefined
  /** Their reference lines, when not stored yet. */
  text: string | undefined
  /** Parsed, in hash order (reads the stored record if need be). */
  blocks(): Promise<ReferencedBlock[]>
}

/** References prefix by prefix: each `open()` starts at `000` (a pass that starts over opens again). */
export interface ReferenceSource {
  open(): ReferenceReader
}

export interface ReferenceReader {
  /** Prefix number `prefix` (0…4095), asked in increasing order; a promise only when it must be waited for. */
  take(prefix: number): PrefixReferences | Promise<PrefixReferences>
  /** Stops reading (closes what is open). */
  close(): Promise<void>
}

/** Raised when stored references do not match their sha256: the run reads the collections instead. */
export class StoredReferencesDoubt extends Error {}

/** References from this run's spill, each prefix compared with the last committed run's (`committed`, when stored). */
export function spilledReferences(spill: ReferenceSpill, committed: readonly StoredRecord[] | undefined): ReferenceSource {
  return { open: () => spillReader(spill, committed) }
}

function spillReader(spill: ReferenceSpill, committed: readonly StoredRecord[] | undefined): ReferenceReader {
  const iterator = spill.lines()[Symbol.asyncIterator]()
  const parse = createReferenceParser()
  let batch: string[] = []
  let pos = 0
  let ended = false
  /** Moves the lines of `prefix` into `lines`; true once they are all there. */
  const collect = (prefix: string, lines: string[]): boolean => {
    for (;;) {
      if (pos >= batch.length) return ended
      const line = batch[pos]!
      if (!line.startsWith(prefix)) {
        if (line < prefix) throw new Error(`reference ${line.slice(0, 32)} out of order`)
        return true
      }
      lines.push(line)
      pos++
    }
  }
  const prefixOf = (i: number, lines: string[]): PrefixReferences => {
    const text = lines.length === 0 ? '' : lines.join('')
    const sha256 = text === '' ? EMPTY_SHA256 : sha256hex(text)
    const previous = committed?.[i]
    const unchanged = previous !== undefined && previous.sha256 === sha256 && previous.count === lines.length
    return {
      sha256,
      count: lines.length,
      unchanged,
      record: unchanged ? previous : undefined,
      text: unchanged ? undefined : text,
      blocks: async () => lines.map(parse),
    }
  }
  return {
    take(i) {
      const prefix = INDEX_PREFIXES[i]!
      const lines: string[] = []
      if (collect(prefix, lines)) return prefixOf(i, lines)
      return (async () => {
        do {
          const next = await iterator.next()
          if (next.done === true) ended = true
          else {
            batch = next.value
            pos = 0
          }
        } while (!collect(prefix, lines))
        return prefixOf(i, lines)
      })()
    },
    async close() {
      await iterator.return?.()
    },
  }
}

/** The last committed run's references (the collections are byte for byte the same). */
export function storedReferences(committed: readonly StoredRecord[], read: (record: StoredRecord) => Promise<Buffer>): ReferenceSource {
  const parse = createReferenceParser()
  const reader: ReferenceReader = {
    take(i) {
      const record = committed[i]!
      return {
        sha256: record.sha256,
        count: record.count,
        unchanged: true,
        record,
        text: undefined,
        async blocks() {
          if (record.length === 0) return []
          const bytes = await read(record)
          if (sha256hex(bytes) !== record.sha256) throw new StoredReferencesDoubt(`stored references of prefix ${INDEX_PREFIXES[i]} do not match their sha256`)
          return parseReferenceLines(bytes.toString('utf8'), parse)
        },
      }
    },
    close: async () => {},
  }
  return { open: () => reader }
}
