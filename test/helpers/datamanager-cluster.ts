import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import type { Test } from 'tap'
import { md5hex } from '../../shared/hash.js'
import { KeepstoreClient, type RequestOptions } from '../../shared/keepstore-client.js'
import { silentLogger, type Logger } from '../../shared/logger.js'
import { rendezvousSuffix } from '../../shared/rendezvous.js'
import { listDigest } from '../../shared/worklist-items.js'
import type { DatamanagerClient } from '../../datamanager/indexes.js'
import { createFileLock } from '../../datamanager/lock.js'
import { runDatamanager, type RunOptions, type RunResult } from '../../datamanager/run.js'
import { ADMIN_TOKEN, call, startCluster, type ClusterOptions, type TestCluster } from './cluster.js'
import { HOUR, T0 } from './cluster-config.js'

export { HOUR, T0 }

export interface DmCluster extends TestCluster {
  /** The shared clock of the keepstores and the datamanager runs. */
  clock: { now: number }
  collectionsFile: string
  stateDir: string
  client: RecordingClient
  /** One datamanager run against this cluster with the shared clock, a silent logger and instant retries. */
  run(options?: Partial<RunOptions>): Promise<RunResult>
}

/**
 * `startCluster` with a datamanager section (collections in
 * `<dir>/collections.jsonl`, state in `<dir>/dm`), TTL 1 h and a clock that
 * both the keepstores and the datamanager read.
 */
export async function startDmCluster(t: Test, options: ClusterOptions = {}): Promise<DmCluster> {
  const clock = { now: T0 }
  const cluster = await startCluster(t, {
    keepstores: 3,
    ...options,
    cluster: { blobSigningTTL: '1h', blobTrashLifetime: '0', ...options.cluster },
    datamanager: { collections: 'collections.jsonl', stateDir: 'dm', ...options.datamanager },
    now: () => clock.now,
  })
  const collectionsFile = path.join(cluster.dir, 'collections.jsonl')
  await writeFile(collectionsFile, '')
  const inner = new KeepstoreClient({ token: ADMIN_TOKEN })
  t.teardown(() => inner.close())
  const client = new RecordingClient(inner)
  const stateDir = path.join(cluster.dir, 'dm')
  const lock = createFileLock(stateDir)
  const logger: Logger = silentLogger()
  return {
    ...cluster,
    clock,
    collectionsFile,
    stateDir,
    client,
    run: (overrides = {}) =>
      runDatamanager({
        config: cluster.config,
        client,
        lock,
        logger,
        now: () => clock.now,
        commit: { attempts: 2, sleep: async () => {} },
        out: { write: () => true } as unknown as NodeJS.WritableStream,
        ...overrides,
      }),
  }
}

/** One PUT the datamanager sent. */
export interface SentList {
  url: string
  path: string
  body: string
  /** Its `X-Keep-Fence`, if it carried one. */
  fence: string | undefined
}

/**
 * A `DatamanagerClient` over a real one that records every PUT and can be
 * told to misbehave: rewrite a server's `/mounts`, cut an index short, fail.
 */
export class RecordingClient implements DatamanagerClient {
  readonly sent: SentList[] = []
  /** Rewrites the parsed `/mounts` answer of a server (by url). */
  mounts = new Map<string, (mounts: Array<Record<string, unknown>>) => unknown>()
  /** Rewrites the index body of `url path` (the whole text). */
  indexes = new Map<string, (body: string) => string>()
  /** `url` → error for every request to it. */
  down = new Set<string>()

  constructor(private readonly inner: KeepstoreClient) {}

  async getJson<T = unknown>(server: string, p: string, options?: RequestOptions): Promise<T> {
    this.check(server)
    const json = await this.inner.getJson<Array<Record<string, unknown>>>(server, p, options)
    const rewrite = p === '/mounts' ? this.mounts.get(server) : undefined
    return (rewrite === undefined ? json : rewrite(json)) as T
  }

  async getStream(server: string, p: string, options?: RequestOptions): Promise<Readable> {
    this.check(server)
    const body = await this.inner.getStream(server, p, options)
    const rewrite = this.indexes.get(`${server} ${p}`)
    if (rewrite === undefined) return body
    let text = ''
    for await (const chunk of body) text += String(chunk)
    return Readable.from([Buffer.from(rewrite(text))])
  }

  async putJson(server: string, p: string, json: string | Iterable<string>, options?: RequestOptions): Promise<void> {
    this.check(server)
    const body = typeof json === 'string' ? json : [...json].join('')
    this.sent.push({ url: server, path: p, body, fence: options?.headers?.['X-Keep-Fence'] })
    await this.inner.putJson(server, p, json === body ? body : [body], options)
  }

  /** PUTs to `path`, optionally only the non-empty ones. */
  puts(p: '/pull' | '/trash', nonEmpty = false): SentList[] {
    return this.sent.filter((s) => s.path === p && (!nonEmpty || s.body !== '[]'))
  }

  private check(server: string): void {
    if (this.down.has(server)) throw Object.assign(new Error(`${server}: ECONNREFUSED`), { code: 'ECONNREFUSED' })
  }
}

/** Stores `data` on keepstore `url` (any mount it picks); returns the block's `hash+size`. */
export async function putBlock(url: string, data: string): Promise<string> {
  const hash = md5hex(data)
  const res = await call(url, 'PUT', `/${hash}`, { body: data })
  if (res.status !== 200) throw new Error(`PUT ${hash} to ${url}: ${res.status} ${res.text}`)
  return `${hash}+${Buffer.byteLength(data)}`
}

/** hash → uuids of the keepstores whose index lists it. */
export async function whereIs(cluster: TestCluster): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>()
  for (const ks of cluster.keepstores) {
    const res = await call(ks.url, 'GET', '/index', { token: ADMIN_TOKEN })
    for (const line of res.text.split('\n')) {
      if (line === '') continue
      const hash = line.slice(0, 32)
      out.set(hash, [...(out.get(hash) ?? []), ks.config.uuid])
    }
  }
  return out
}

/** Keepstore uuids in rendezvous order for `hash` (PROTOCOL §6). */
export function rendezvous(cluster: TestCluster, hash: string): string[] {
  return cluster.config.keepstores
    .map((ks) => ({ uuid: ks.uuid, weight: md5hex(hash + rendezvousSuffix(ks.uuid)) }))
    .sort((a, b) => (a.weight < b.weight ? 1 : a.weight > b.weight ? -1 : 0))
    .map((k) => k.uuid)
}

/** A collection record line for a `.jsonl` file. */
export function collection(uuid: string, locators: string[], extra: Record<string, unknown> = {}): string {
  const manifest = locators.length === 0 ? '' : `. ${locators.join(' ')} 0:1:file.txt\n`
  return JSON.stringify({ uuid, manifest_text: manifest, replication_desired: null, ...extra })
}

export async function writeCollections(file: string, lines: string[]): Promise<void> {
  await writeFile(file, lines.map((l) => `${l}\n`).join(''))
}

/** Waits until every keepstore's pull and trash worklists are idle. */
export async function settle(cluster: TestCluster): Promise<void> {
  await Promise.all(cluster.keepstores.flatMap((k) => [k.worklists.pull.idle(), k.worklists.trash.idle()]))
}

export const EMPTY_LIST_DIGEST = listDigest('[]')
