import type { Readable } from 'node:stream'
import { z } from 'zod'
import { KeepError } from '../shared/errors.js'
import type { IndexEntry } from '../shared/index-format.js'
import type { KeepstoreClient } from '../shared/keepstore-client.js'
import { IndexParser, type PrefixGroup } from './index-parser.js'
import type { StoredRecord } from './index-store.js'
import type { SpillDb } from './spill.js'
import type { MountInfo } from './topology.js'

/** What the datamanager needs of a keepstore client; `KeepstoreClient` fits, tests wrap it to record or break things. */
export type DatamanagerClient = Pick<KeepstoreClient, 'getJson' | 'getStream' | 'putJson'>

/** A keepstore of the cluster config. */
export interface ServerRef {
  uuid: string
  url: string
}

/**
 * How one mount's index went. `complete` is the only state balance may
 * trust: `pending` (never finished), `incomplete` (no final empty line),
 * `failed` (HTTP or parse error), `line-too-long` (a line over 1 KiB: the
 * read stopped there) all make the run refuse. `unsorted` means the run
 * starts over with that index spilled to disk.
 */
export interface IndexStatus {
  server: string
  mount: string
  state: 'pending' | 'complete' | 'incomplete' | 'failed' | 'unsorted' | 'line-too-long'
  lines: number
  error: string | undefined
  /** `full`: the whole index was read; `incremental`: the stored lines, plus the prefixes whose digest changed. */
  read: 'full' | 'incremental'
  /** Why a full read where an incremental one was tried or possible (no stored lines, no digests, a digest that still differed…). */
  fullReason: string | undefined
  /** Index bytes read from the keepstore (digests are not counted). */
  bytes: number
  /** Prefixes read again because their digest changed (incremental reads). */
  prefixesReread: number
}

/** One mount's lines of one 3-hex prefix. */
export interface SourceGroup {
  entries: IndexEntry[]
  /** The exact bytes of the lines, when they were just read in a full read (to be stored). */
  bytes: Buffer | undefined
  /** Where the lines are stored already (the last committed run's, or a prefix read again this run). */
  record: StoredRecord | undefined
}

/**
 * One mount's index, prefix by prefix (`000`…`fff`, asked in increasing
 * order). Never throws for a keepstore's fault: a failure ends the lines
 * and is recorded in `status`, so the run carries on with the other mounts
 * and the sanity phase refuses afterwards.
 */
export interface PrefixSource {
  server: string
  mount: string
  status: IndexStatus
  /** False when the lines cannot be kept for the next run (an index spilled because it came unsorted). */
  readonly storable: boolean
  /** The lines of prefix number `prefix` (0…4095); a promise only when they must be waited for. */
  take(prefix: number): SourceGroup | Promise<SourceGroup>
  /** True when prefix `prefix` holds exactly the last committed run's lines, known without reading them. */
  unchanged(prefix: number): boolean
  /** Reads on to the end (the final empty line), settling `status`; stops reading. */
  finish(): Promise<void>
  /** Where every prefix's lines are stored already, when they are (a mount read from the store): what a worker thread reads. */
  readonly records?: readonly StoredRecord[]
}

export interface IndexOptions {
  signal?: AbortSignal
  /** Called when the index turns out not to be sorted (the stream ends there). */
  onUnsorted?(): void
  /** Why this mount is read in full (reported). */
  fullReason?: string
}

const mountsSchema = z.array(
  z.object({
    uuid: z.string().min(1),
    device_id: z.string().default(''),
    allow_write: z.boolean().default(false),
    allow_trash: z.boolean().default(false),
    replication: z.number().int().min(1).default(1),
    storage_classes: z.record(z.string(), z.boolean()).nullish(),
    priority: z.number().int().default(0),
  }),
)

/** `GET /mounts`, validated. Throws `KEEP_UNAVAILABLE` (no answer) or `KEEP_BAD_REQUEST` (an answer we cannot use). */
export async function fetchMounts(client: DatamanagerClient, server: ServerRef, signal?: AbortSignal): Promise<MountInfo[]> {
  const json = await client.getJson(server.url, '/mounts', signal ? { signal } : {})
  const parsed = mountsSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new KeepError('KEEP_BAD_REQUEST', `GET /mounts: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`)
  }
  return parsed.data.map((m) => {
    const classes = Object.entries(m.storage_classes ?? {})
      .filter(([, on]) => on)
      .map(([name]) => name)
      .sort()
    return {
      uuid: m.uuid,
      priority: m.priority,
      replication: m.replication,
      allowWrite: m.allow_write,
      allowTrash: m.allow_trash,
      storageClasses: classes.length === 0 ? ['default'] : classes,
      deviceId: m.device_id,
    }
  })
}

/** `/mounts/<uuid>/blocks[/<prefix>]` */
export function indexPath(mount: string, prefix = ''): string {
  return `/mounts/${encodeURIComponent(mount)}/blocks${prefix === '' ? '' : `/${prefix}`}`
}

export function newStatus(server: ServerRef, mount: string, read: IndexStatus['read'], fullReason?: string): IndexStatus {
  return { server: server.uuid, mount, state: 'pending', lines: 0, error: undefined, read, fullReason, bytes: 0, prefixesReread: 0 }
}

const EMPTY_GROUP: SourceGroup = Object.freeze({ entries: [], bytes: Buffer.alloc(0), record: undefined })

/**
 * Reads `GET /mounts/<uuid>/blocks` in full, checking it as it goes (see
 * {@link IndexParser}) and cutting it into prefix groups with their exact
 * bytes, which the run stores for the next one.
 */
export function openFullIndex(client: DatamanagerClient, server: ServerRef, mount: string, options: IndexOptions = {}): PrefixSource {
  const status = newStatus(server, mount, 'full', options.fullReason)
  const parser = new IndexParser()
  async function* groups(): AsyncGenerator<PrefixGroup[]> {
    let body: Readable | undefined
    try {
      body = await client.getStream(server.url, indexPath(mount), options.signal ? { signal: options.signal } : {})
      for await (const chunk of body) {
        status.bytes += (chunk as Buffer).length
        const done = parser.pushGroups(chunk as Buffer)
        if (done.length > 0) yield done
        if (parser.error !== undefined) throw parser.error
      }
      settleStatus(status, parser)
    } catch (err) {
      status.state = parser.unsorted ? 'unsorted' : parser.lineTooLong ? 'line-too-long' : 'failed'
      status.error = (err as Error).message
      if (parser.unsorted) options.onUnsorted?.()
    } finally {
      status.lines = parser.lines
      body?.destroy()
    }
  }
  return groupSource(server, mount, status, true, groups(), (g) => ({ entries: g.entries, bytes: g.bytes, record: undefined }))
}

/** Ends a full read: complete when the final empty line came, else incomplete. */
export function settleStatus(status: IndexStatus, parser: IndexParser): void {
  if (parser.end()) {
    status.state = 'complete'
  } else {
    status.state = 'incomplete'
    status.error = 'index ended without its final empty line'
  }
}

/**
 * A source over groups arriving in prefix order: `take` reads on until the
 * asked prefix's group (or a later one) arrives; a prefix without a group
 * holds no lines.
 */
function groupSource<G extends { prefix: string }>(
  server: ServerRef,
  mount: string,
  status: IndexStatus,
  storable: boolean,
  source: AsyncGenerator<G[]>,
  toGroup: (g: G) => SourceGroup,
): PrefixSource {
  let queue: G[] = []
  let head = 0
  let ended = false
  const pull = async (): Promise<void> => {
    const next = await source.next()
    if (next.done === true) ended = true
    else {
      queue = next.value
      head = 0
    }
  }
  /** The group of `prefix` from what arrived, or undefined when more must be read first. */
  const fromQueue = (prefix: number): SourceGroup | undefined => {
    for (;;) {
      const g = queue[head]
      if (g === undefined) return ended ? EMPTY_GROUP : undefined
      const at = parseInt(g.prefix, 16)
      if (at === prefix) {
        head++
        return toGroup(g)
      }
      if (at > prefix) return EMPTY_GROUP
      head++ // only an index out of order gets here, and it has stopped
    }
  }
  return {
    server: server.uuid,
    mount,
    status,
    storable,
    take(prefix) {
      const ready = fromQueue(prefix)
      if (ready !== undefined) return ready
      return (async () => {
        for (;;) {
          await pull()
          const group = fromQueue(prefix)
          if (group !== undefined) return group
        }
      })()
    },
    unchanged: () => false,
    async finish() {
      while (!ended) await pull()
    },
  }
}

/**
 * Fetches an index that arrived unsorted into `db` (level sorts it), then
 * serves it like {@link openFullIndex} does, in hash order. Resolves once the
 * index is on disk; its status is final by then. Its lines are not kept
 * for the next run (they are not what the keepstore's digests cover).
 */
export async function spillIndex(
  client: DatamanagerClient,
  server: ServerRef,
  mount: string,
  db: SpillDb,
  options: Omit<IndexOptions, 'onUnsorted'> = {},
): Promise<PrefixSource> {
  const status = newStatus(server, mount, 'full', options.fullReason ?? 'index not sorted')
  const parser = new IndexParser({ allowUnsorted: true })
  let body: Readable | undefined
  try {
    body = await client.getStream(server.url, indexPath(mount), options.signal ? { signal: options.signal } : {})
    for await (const chunk of body) {
      status.bytes += (chunk as Buffer).length
      const entries = parser.push(chunk as Buffer)
      if (parser.error !== undefined) throw parser.error
      if (entries.length === 0) continue
      const batch = db.batch()
      for (const e of entries) batch.put(e.hash, `${e.size} ${e.mtime}`)
      await batch.write()
    }
    settleStatus(status, parser)
  } catch (err) {
    status.state = parser.lineTooLong ? 'line-too-long' : 'failed'
    status.error = (err as Error).message
  } finally {
    status.lines = parser.lines
    body?.destroy()
  }
  return groupSource(server, mount, status, false, readSpilledIndex(db), (g) => ({ entries: g.entries, bytes: undefined, record: undefined }))
}

async function* readSpilledIndex(db: SpillDb): AsyncGenerator<Array<{ prefix: string; entries: IndexEntry[] }>> {
  const iterator = db.iterator()
  let current: { prefix: string; entries: IndexEntry[] } | undefined
  try {
    for (;;) {
      const entries = await iterator.nextv(1024)
      if (entries.length === 0) break
      const done: Array<{ prefix: string; entries: IndexEntry[] }> = []
      for (const [hash, value] of entries) {
        const space = value.indexOf(' ')
        const entry = { hash, size: Number(value.slice(0, space)), mtime: BigInt(value.slice(space + 1)) }
        if (current === undefined || !hash.startsWith(current.prefix)) {
          if (current !== undefined) done.push(current)
          current = { prefix: hash.slice(0, 3), entries: [] }
        }
        current.entries.push(entry)
      }
      if (done.length > 0) yield done
    }
    if (current !== undefined) yield [current]
  } finally {
    await iterator.close()
  }
}
