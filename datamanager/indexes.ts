import type { Readable } from 'node:stream'
import { z } from 'zod'
import { KeepError } from '../shared/errors.js'
import type { IndexEntry } from '../shared/index-format.js'
import type { KeepstoreClient } from '../shared/keepstore-client.js'
import { IndexParser } from './index-parser.js'
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
}

/** One mount's index as a stream of sorted batches; the status is final once the stream ends. */
export interface IndexSource {
  server: string
  mount: string
  status: IndexStatus
  batches: AsyncIterable<IndexEntry[]>
}

export interface IndexOptions {
  prefix?: string
  signal?: AbortSignal
  /** Called when the index turns out not to be sorted (the stream ends there). */
  onUnsorted?(): void
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

function indexPath(mount: string, prefix: string): string {
  return `/mounts/${encodeURIComponent(mount)}/blocks${prefix === '' ? '' : `/${prefix}`}`
}

function newStatus(server: ServerRef, mount: string): IndexStatus {
  return { server: server.uuid, mount, state: 'pending', lines: 0, error: undefined }
}

/**
 * Streams `GET /mounts/<uuid>/blocks` as parsed batches, checking it as it
 * goes (see {@link IndexParser}). Never throws: a failure ends the stream
 * and is recorded in `status`, so the merge carries on with the others and
 * the sanity phase refuses afterwards.
 */
export function openIndex(client: DatamanagerClient, server: ServerRef, mount: string, options: IndexOptions = {}): IndexSource {
  const status = newStatus(server, mount)
  const prefix = options.prefix ?? ''
  async function* batches(): AsyncGenerator<IndexEntry[]> {
    const parser = new IndexParser({ prefix })
    let body: Readable | undefined
    try {
      body = await client.getStream(server.url, indexPath(mount, prefix), options.signal ? { signal: options.signal } : {})
      for await (const chunk of body) {
        const entries = parser.push(chunk as Buffer)
        if (entries.length > 0) yield entries
        if (parser.error !== undefined) throw parser.error
      }
      settle(status, parser)
    } catch (err) {
      status.state = parser.unsorted ? 'unsorted' : parser.lineTooLong ? 'line-too-long' : 'failed'
      status.error = (err as Error).message
      if (parser.unsorted) options.onUnsorted?.()
    } finally {
      status.lines = parser.lines
      body?.destroy()
    }
  }
  return { server: server.uuid, mount, status, batches: batches() }
}

function settle(status: IndexStatus, parser: IndexParser): void {
  if (parser.end()) {
    status.state = 'complete'
  } else {
    status.state = 'incomplete'
    status.error = 'index ended without its final empty line'
  }
}

/**
 * Fetches an index that arrived unsorted into `db` (level sorts it), then
 * serves it like {@link openIndex} does, in hash order. Resolves once the
 * index is on disk; its status is final by then.
 */
export async function spillIndex(
  client: DatamanagerClient,
  server: ServerRef,
  mount: string,
  db: SpillDb,
  options: Omit<IndexOptions, 'onUnsorted'> = {},
): Promise<IndexSource> {
  const status = newStatus(server, mount)
  const prefix = options.prefix ?? ''
  const parser = new IndexParser({ prefix, allowUnsorted: true })
  let body: Readable | undefined
  try {
    body = await client.getStream(server.url, indexPath(mount, prefix), options.signal ? { signal: options.signal } : {})
    for await (const chunk of body) {
      const entries = parser.push(chunk as Buffer)
      if (parser.error !== undefined) throw parser.error
      if (entries.length === 0) continue
      const batch = db.batch()
      for (const e of entries) batch.put(e.hash, `${e.size} ${e.mtime}`)
      await batch.write()
    }
    settle(status, parser)
  } catch (err) {
    status.state = parser.lineTooLong ? 'line-too-long' : 'failed'
    status.error = (err as Error).message
  } finally {
    status.lines = parser.lines
    body?.destroy()
  }
  return { server: server.uuid, mount, status, batches: readSpilledIndex(db) }
}

async function* readSpilledIndex(db: SpillDb): AsyncGenerator<IndexEntry[]> {
  const iterator = db.iterator()
  try {
    for (;;) {
      const entries = await iterator.nextv(1024)
      if (entries.length === 0) return
      yield entries.map(([hash, value]) => {
        const space = value.indexOf(' ')
        return { hash, size: Number(value.slice(0, space)), mtime: BigInt(value.slice(space + 1)) }
      })
    }
  } finally {
    await iterator.close()
  }
}
