import { EMPTY_SHA256, INDEX_PREFIXES, sha256hex } from '../shared/index-digests.js'
import type { StoredRecord } from './index-store.js'
import { createReferenceParser, PrefixRefs, referenceLines, type PrefixLines, type ReferenceSpill } from './references.js'

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
  /** The references, to join to index lines (reads the stored record if need be). */
  refs(): PrefixRefs | Promise<PrefixRefs>
}

/** References prefix by prefix: each `open()` starts at `000` (a pass that starts over opens again). */
export interface ReferenceSource {
  open(): ReferenceReader
  /** Where they are on disk, for a worker thread to read them itself. */
  readonly where?: ReferencesOnDisk
}

/** The references of a source, as files: this run's spill (compared with the last committed run's records), or the stored records. */
export type ReferencesOnDisk =
  | { kind: 'spill'; files: readonly string[]; committed: readonly StoredRecord[] | undefined }
  | { kind: 'stored'; records: readonly StoredRecord[] }

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
  return { open: () => spillReader(spill, committed), where: { kind: 'spill', files: spill.files, committed } }
}

function spillReader(spill: ReferenceSpill, committed: readonly StoredRecord[] | undefined): ReferenceReader {
  const iterator = spill.prefixes()[Symbol.asyncIterator]()
  const parse = createReferenceParser()
  const prefixOf = (i: number, { lines }: PrefixLines): PrefixReferences => {
    const text = lines.size === 0 ? '' : [...lines.values()].join('')
    const sha256 = text === '' ? EMPTY_SHA256 : sha256hex(text)
    const previous = committed?.[i]
    const unchanged = previous !== undefined && previous.sha256 === sha256 && previous.count === lines.size
    return {
      sha256,
      count: lines.size,
      unchanged,
      record: unchanged ? previous : undefined,
      text: unchanged ? undefined : text,
      refs: () => new PrefixRefs(lines, parse),
    }
  }
  return {
    async take(i) {
      const next = await iterator.next()
      if (next.done === true || next.value.prefix !== i) throw new Error(`references: prefix ${INDEX_PREFIXES[i]} asked out of order`)
      return prefixOf(i, next.value)
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
        async refs() {
          if (record.length === 0) return new PrefixRefs(new Map(), parse)
          const bytes = await read(record)
          if (sha256hex(bytes) !== record.sha256) throw new StoredReferencesDoubt(`stored references of prefix ${INDEX_PREFIXES[i]} do not match their sha256`)
          return new PrefixRefs(referenceLines(bytes.toString('utf8')), parse)
        },
      }
    },
    close: async () => {},
  }
  return { open: () => reader, where: { kind: 'stored', records: committed } }
}
