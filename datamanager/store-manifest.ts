import { EMPTY_SHA256, INDEX_PREFIXES, PREFIX_COUNT } from '../shared/index-digests.js'

// What the incremental state records (see index-store.ts), and how its manifest
// holds them: keys `meta`; `l <mount> <prefix>`, `r <prefix>`, `o <prefix>` for
// non-empty records only; values `<segment> <offset> <length> <count> <sha256>`
// (and `<maxOld|-> <minYoung|->` for outcomes).
/** Where one stored record lives and what it holds. */
export interface StoredRecord {
  /** Segment file name; '' for an empty record (nothing to read). */
  segment: string
  offset: number
  length: number
  /** Index lines or referenced blocks in the record. */
  count: number
  /** sha256 hex of the record's bytes. */
  sha256: string
}

/**
 * The decisions of one prefix, with the replica mtimes on either side of the
 * cutoff they were made with: they hold for another cutoff as long as no
 * mtime lies between the two (`maxOld < cutoff <= minYoung`).
 */
export interface OutcomeRecord extends StoredRecord {
  /** The newest replica mtime older than the cutoff (trashable by age). */
  maxOld: bigint | undefined
  /** The oldest replica mtime not older than the cutoff. */
  minYoung: bigint | undefined
}

export interface CollectionsDigest {
  /** sha256 over the collection files' names, sizes and bytes and the config that shapes references. */
  digest: string
  files: number
  collections: number
  references: number
}

export interface StoredMeta {
  generation: number
  /** Servers, mounts, policy and decision code the outcomes were computed with (see `runFingerprint`). */
  fingerprint: string
  /** Set when the references are those of exactly these collection bytes. */
  collections: CollectionsDigest | undefined
  /** Mounts whose lines are stored, as `server/mount`. */
  mounts: string[]
}

export interface StoreState {
  meta: StoredMeta
  /** Mount uuid → one record per prefix. */
  lines: Map<string, StoredRecord[]>
  /** One record per prefix, or undefined when not stored. */
  refs: StoredRecord[] | undefined
  outcomes: OutcomeRecord[] | undefined
}

export const STORE_VERSION = 1
export const EMPTY_RECORD: StoredRecord = Object.freeze({ segment: '', offset: 0, length: 0, count: 0, sha256: EMPTY_SHA256 })
export const EMPTY_OUTCOME: OutcomeRecord = Object.freeze({ ...EMPTY_RECORD, maxOld: undefined, minYoung: undefined })

export function emptyState(): StoreState {
  return { meta: { generation: 0, fingerprint: '', collections: undefined, mounts: [] }, lines: new Map(), refs: undefined, outcomes: undefined }
}

export function forEachRecord(state: StoreState, f: (r: StoredRecord) => void): void {
  for (const records of state.lines.values()) records.forEach(f)
  state.refs?.forEach(f)
  state.outcomes?.forEach(f)
}

export function referencedSegments(state: StoreState): Set<string> {
  const out = new Set<string>()
  forEachRecord(state, (r) => {
    if (r.segment !== '') out.add(r.segment)
  })
  return out
}


function encodeRecord(r: StoredRecord): string {
  return `${r.segment} ${r.offset} ${r.length} ${r.count} ${r.sha256}`
}

function encodeOutcome(r: OutcomeRecord): string {
  return `${encodeRecord(r)} ${r.maxOld ?? '-'} ${r.minYoung ?? '-'}`
}

function isEmpty(r: StoredRecord): boolean {
  return r.length === 0 && r.count === 0 && r.sha256 === EMPTY_SHA256
}

function isEmptyOutcome(r: OutcomeRecord): boolean {
  return isEmpty(r) && r.maxOld === undefined && r.minYoung === undefined
}

export function encodeState(state: StoreState): Map<string, string> {
  const out = new Map<string, string>()
  const meta = { version: STORE_VERSION, ...state.meta, refs: state.refs !== undefined, outcomes: state.outcomes !== undefined }
  out.set('meta', JSON.stringify(meta))
  for (const [mount, records] of state.lines) {
    records.forEach((r, i) => {
      if (!isEmpty(r)) out.set(`l ${mount} ${INDEX_PREFIXES[i]}`, encodeRecord(r))
    })
  }
  state.refs?.forEach((r, i) => {
    if (!isEmpty(r)) out.set(`r ${INDEX_PREFIXES[i]}`, encodeRecord(r))
  })
  state.outcomes?.forEach((r, i) => {
    if (!isEmptyOutcome(r)) out.set(`o ${INDEX_PREFIXES[i]}`, encodeOutcome(r))
  })
  return out
}

const RECORD_RE = /^(seg-\d+-\d+\.dat|) (\d+) (\d+) (\d+) ([0-9a-f]{64})(?: (-|\d+) (-|\d+))?$/

function decodeRecord(value: string, key: string): OutcomeRecord {
  const m = RECORD_RE.exec(value)
  if (m === null) throw new Error(`manifest: ${key}: malformed record`)
  const bigOrUndefined = (s: string | undefined): bigint | undefined => (s === undefined || s === '-' ? undefined : BigInt(s))
  return { segment: m[1]!, offset: Number(m[2]), length: Number(m[3]), count: Number(m[4]), sha256: m[5]!, maxOld: bigOrUndefined(m[6]), minYoung: bigOrUndefined(m[7]) }
}

export function decodeState(values: ReadonlyMap<string, string>): StoreState {
  const metaText = values.get('meta')
  if (metaText === undefined) {
    if (values.size > 0) throw new Error('manifest: records without meta')
    return emptyState()
  }
  const meta = JSON.parse(metaText) as StoredMeta & { version: number; refs: boolean; outcomes: boolean }
  if (meta.version !== STORE_VERSION) throw new Error(`manifest: version ${meta.version}, not ${STORE_VERSION}`)
  const state: StoreState = {
    meta: { generation: meta.generation, fingerprint: meta.fingerprint, collections: meta.collections ?? undefined, mounts: meta.mounts },
    lines: new Map(),
    refs: meta.refs ? new Array<StoredRecord>(PREFIX_COUNT).fill(EMPTY_RECORD) : undefined,
    outcomes: meta.outcomes ? new Array<OutcomeRecord>(PREFIX_COUNT).fill(EMPTY_OUTCOME) : undefined,
  }
  for (const key of meta.mounts) state.lines.set(key.slice(key.indexOf('/') + 1), new Array<StoredRecord>(PREFIX_COUNT).fill(EMPTY_RECORD))
  for (const [key, value] of values) {
    if (key === 'meta') continue
    const parts = key.split(' ')
    const prefix = parts.at(-1)!
    const i = parseInt(prefix, 16)
    if (prefix.length !== 3 || INDEX_PREFIXES[i] !== prefix) throw new Error(`manifest: ${key}: bad prefix`)
    const record = decodeRecord(value, key)
    if (parts[0] === 'l' && parts.length === 3 && state.lines.has(parts[1]!)) state.lines.get(parts[1]!)![i] = stripWindow(record)
    else if (parts[0] === 'r' && parts.length === 2 && state.refs !== undefined) state.refs[i] = stripWindow(record)
    else if (parts[0] === 'o' && parts.length === 2 && state.outcomes !== undefined) state.outcomes[i] = record
    else throw new Error(`manifest: ${key}: unexpected key`)
  }
  return state
}

function stripWindow(r: OutcomeRecord): StoredRecord {
  return { segment: r.segment, offset: r.offset, length: r.length, count: r.count, sha256: r.sha256 }
}
