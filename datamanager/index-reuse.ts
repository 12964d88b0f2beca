import type { Readable } from 'node:stream'
import { INDEX_PREFIXES, parseDigests, PREFIX_COUNT, sha256hex, type PrefixDigest } from '../shared/index-digests.js'
import { IndexParser } from './index-parser.js'
import type { StoredRecord, StoreWriter } from './index-store.js'
import { indexPath, newStatus, type DatamanagerClient, type IndexStatus, type PrefixSource, type ServerRef, type SourceGroup } from './indexes.js'

/** How one mount is read this run: from its stored lines plus the prefixes read again, or in full and why. */
export type ReadPlan =
  | { read: 'incremental'; status: IndexStatus; reread: ReadonlyMap<number, StoredRecord> }
  | { read: 'full'; reason: string; bytes: number }
  /** Read in full before the pass (`prefetchFullReads`): every prefix's lines are this run's records; `status` is the full read's. */
  | { read: 'prefetched'; status: IndexStatus; records: readonly StoredRecord[] }

export interface PlanInput {
  client: DatamanagerClient
  server: ServerRef
  mount: string
  /** The last committed run's records of this mount, one per prefix. */
  stored: readonly StoredRecord[]
  /** Where prefixes read again are written (read back by the run, committed with it). */
  writer: StoreWriter
  signal?: AbortSignal
  /** Prefix reads in flight for this mount (default 4). */
  concurrency?: number
}

/** A digests body is ~300 KB; a prefix of a billion-block cluster's mount a few MB. */
const MAX_DIGESTS_BYTES = 1 << 20
const MAX_PREFIX_BYTES = 64 << 20

/**
 * Fetches the mount's digests and reads again every prefix whose digest
 * differs from its stored lines (DESIGN §7). Any doubt means a full read:
 * no digests endpoint or any answer but a well-formed 200, a prefix read
 * that fails or lacks its final empty line, or one whose bytes still do not
 * match the digest (it changed since): the plan then says why.
 */
export async function planRead(input: PlanInput): Promise<ReadPlan> {
  const { client, server, mount, stored, writer, signal } = input
  const options = signal ? { signal } : {}
  let bytes = 0
  let digests: PrefixDigest[] | string
  try {
    const body = await twice(signal, async () => readBody(await client.getStream(server.url, `/mounts/${encodeURIComponent(mount)}/digests`, options), MAX_DIGESTS_BYTES))
    digests = body === undefined ? 'larger than 1 MiB' : parseDigests(body.toString('latin1'))
  } catch (err) {
    digests = (err as Error).message
  }
  if (typeof digests === 'string') return { read: 'full', reason: `no usable digests: ${digests}`, bytes }
  const changed: number[] = []
  for (let i = 0; i < PREFIX_COUNT; i++) {
    if (digests[i]!.sha256 !== stored[i]!.sha256 || digests[i]!.blocks !== stored[i]!.count) changed.push(i)
  }
  const reread = new Map<number, StoredRecord>()
  let doubt: string | undefined
  const readOne = async (i: number): Promise<void> => {
    const prefix = INDEX_PREFIXES[i]!
    let body: Buffer | undefined
    try {
      body = await twice(signal, async () => readBody(await client.getStream(server.url, indexPath(mount, prefix), options), MAX_PREFIX_BYTES))
    } catch (err) {
      doubt ??= `prefix ${prefix}: ${(err as Error).message}`
      return
    }
    if (body === undefined) {
      doubt ??= `prefix ${prefix}: larger than ${MAX_PREFIX_BYTES} bytes`
      return
    }
    bytes += body.length
    const complete = (body.length === 1 && body[0] === 10) || (body.length >= 2 && body[body.length - 1] === 10 && body[body.length - 2] === 10)
    if (!complete) {
      doubt ??= `prefix ${prefix}: no final empty line`
      return
    }
    const lines = body.subarray(0, body.length - 1)
    const sha256 = sha256hex(lines)
    if (sha256 !== digests[i]!.sha256) {
      doubt ??= `prefix ${prefix} still differs from its digest after reading it again`
      return
    }
    await writer.drain()
    reread.set(i, writer.append(lines, digests[i]!.blocks, sha256))
  }
  let next = 0
  const worker = async (): Promise<void> => {
    while (doubt === undefined && next < changed.length && signal?.aborted !== true) await readOne(changed[next++]!)
  }
  await Promise.all(Array.from({ length: input.concurrency ?? 4 }, worker))
  if (doubt === undefined && signal?.aborted === true) doubt = 'stopped at the run deadline'
  if (doubt !== undefined) return { read: 'full', reason: doubt, bytes }
  const status = newStatus(server, mount, 'incremental')
  status.bytes = bytes
  status.prefixesReread = changed.length
  for (let i = 0; i < PREFIX_COUNT; i++) status.lines += (reread.get(i) ?? stored[i]!).count
  return { read: 'incremental', status, reread }
}

/**
 * `read`, tried again once if it fails (a keep-alive connection the server
 * closed as it was reused fails a request now and then): one lost request
 * should not cost a full read. What comes back is checked all the same.
 */
async function twice<T>(signal: AbortSignal | undefined, read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (err) {
    // An HTTP answer (its status starts the message) is an answer; only a lost connection is tried again.
    if (signal?.aborted === true || /^\d{3}\b/.test((err as Error).message)) throw err
    return read()
  }
}

/** The whole body, or undefined past `max` bytes (the rest is not read). */
async function readBody(body: Readable, max: number): Promise<Buffer | undefined> {
  const parts: Buffer[] = []
  let length = 0
  try {
    for await (const chunk of body) {
      length += (chunk as Buffer).length
      if (length > max) return undefined
      parts.push(chunk as Buffer)
    }
  } finally {
    body.destroy()
  }
  return Buffer.concat(parts, length)
}

/**
 * Serves a mount planned `incremental`: each prefix from this run's read or
 * the last committed run's lines, its bytes checked against their sha256
 * and parsed as the keepstore's own lines would be. Anything amiss (a
 * stored record that does not match, a line that does not parse) calls
 * `onDoubt` — the run then reads this mount in full — and ends the lines.
 */
export function openStoredIndex(
  server: ServerRef,
  mount: string,
  plan: Extract<ReadPlan, { read: 'incremental' }>,
  stored: readonly StoredRecord[],
  read: (record: StoredRecord) => Promise<Buffer>,
  onDoubt: (reason: string) => void,
): PrefixSource {
  const { reread } = plan
  const status: IndexStatus = { ...plan.status }
  const empty = (record: StoredRecord): SourceGroup => ({ entries: [], bytes: undefined, record })
  const doubt = (reason: string): SourceGroup => {
    if (status.state !== 'failed') {
      status.state = 'failed'
      status.error = reason
      onDoubt(reason)
    }
    return empty(stored[0]!)
  }
  return {
    server: server.uuid,
    mount,
    status,
    storable: true,
    take(i) {
      const record = reread.get(i) ?? stored[i]!
      if (status.state === 'failed') return empty(record)
      if (record.count === 0 && record.length === 0) return empty(record)
      return readGroup(i, record)
    },
    unchanged: (i) => !reread.has(i),
    records: Array.from({ length: PREFIX_COUNT }, (_, i) => reread.get(i) ?? stored[i]!),
    async finish() {
      if (status.state === 'pending') status.state = 'complete'
    },
  }

  async function readGroup(i: number, record: StoredRecord): Promise<SourceGroup> {
    let bytes: Buffer
    try {
      bytes = await read(record)
    } catch (err) {
      return doubt(`stored lines of prefix ${INDEX_PREFIXES[i]}: ${(err as Error).message}`)
    }
    if (sha256hex(bytes) !== record.sha256) return doubt(`stored lines of prefix ${INDEX_PREFIXES[i]} do not match their sha256`)
    const parser = new IndexParser({ prefix: INDEX_PREFIXES[i]! })
    const entries = parser.push(bytes)
    parser.push(NEWLINE)
    if (!parser.end() || parser.lines !== record.count) {
      return doubt(`prefix ${INDEX_PREFIXES[i]}: ${parser.error?.message ?? `${parser.lines} lines, the digest says ${record.count}`}`)
    }
    return { entries, bytes: undefined, record }
  }
}

const NEWLINE = Buffer.from('\n')
