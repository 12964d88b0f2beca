import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { DigestBuilder } from '../../shared/index-digests.js'

/** One mount of a {@link ModelKeepstore}: what `GET /mounts` says of it, and its blocks. */
export interface ModelMount {
  uuid: string
  deviceId: string
  allowWrite: boolean
  allowTrash: boolean
  replication: number
  storageClasses: string[]
  priority: number
  /** hash → size and mtime (ns); edit it freely between requests. */
  blocks: Map<string, { size: number; mtime: bigint }>
}

/**
 * A keepstore reduced to what the datamanager reads and sends, over state a
 * test edits directly: `GET /mounts`, `GET /mounts/<uuid>/blocks[/<prefix>]`,
 * `GET /mounts/<uuid>/digests` (PROTOCOL §3; 400 when `digests` is off, as a
 * keepstore without the endpoint answers), `PUT /pull` and `PUT /trash`
 * (recorded, not carried out).
 */
export interface ModelKeepstore {
  uuid: string
  url: string
  mounts: ModelMount[]
  /** Serve the digests endpoint (default true). */
  digests: boolean
  /** PUT bodies received, in order. */
  lists: Array<{ path: string; body: string }>
  /** Index bytes served (`/blocks` answers), and the paths asked. */
  served: { indexBytes: number; paths: string[] }
  /** Called before a GET is answered (a test changes the state there to race the datamanager). */
  beforeGet: ((path: string) => void) | undefined
}

export function modelMount(uuid: string, overrides: Partial<ModelMount> = {}): ModelMount {
  return {
    uuid,
    deviceId: `model:${uuid}`,
    allowWrite: true,
    allowTrash: true,
    replication: 1,
    storageClasses: ['default'],
    priority: 0,
    blocks: new Map(),
    ...overrides,
  }
}

/** The index lines of a mount (optionally one prefix), sorted, each with its `\n`. */
export function indexLines(mount: ModelMount, prefix = ''): string[] {
  return [...mount.blocks.keys()]
    .filter((h) => h.startsWith(prefix))
    .sort()
    .map((h) => `${h}+${mount.blocks.get(h)!.size} ${mount.blocks.get(h)!.mtime}\n`)
}

export async function startModelKeepstore(t: Test, uuid: string, mounts: ModelMount[]): Promise<ModelKeepstore> {
  const model: ModelKeepstore = { uuid, url: '', mounts, digests: true, lists: [], served: { indexBytes: 0, paths: [] }, beforeGet: undefined }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? ''
    const send = (status: number, body: string, type = 'text/plain'): void => {
      res.writeHead(status, { 'content-type': type })
      res.end(body)
    }
    if (req.method === 'PUT' && (url === '/pull' || url === '/trash')) {
      const parts: Buffer[] = []
      req.on('data', (c: Buffer) => parts.push(c))
      req.on('end', () => {
        model.lists.push({ path: url, body: Buffer.concat(parts).toString() })
        send(200, '')
      })
      return
    }
    if (req.method !== 'GET') return send(400, 'Bad Request\n')
    model.served.paths.push(url)
    model.beforeGet?.(url)
    if (url === '/mounts') {
      const body = model.mounts.map((m) => ({
        uuid: m.uuid,
        device_id: m.deviceId,
        allow_write: m.allowWrite,
        allow_trash: m.allowTrash,
        replication: m.replication,
        storage_classes: Object.fromEntries(m.storageClasses.map((c) => [c, true])),
        priority: m.priority,
      }))
      return send(200, JSON.stringify(body), 'application/json')
    }
    const match = /^\/mounts\/([^/]+)\/(blocks|digests)(?:\/([0-9a-f]{0,32}))?$/.exec(url)
    const mount = model.mounts.find((m) => m.uuid === decodeURIComponent(match?.[1] ?? ''))
    if (match === null) return send(400, 'Bad Request\n')
    if (mount === undefined) return send(404, 'mount not found\n')
    if (match[2] === 'digests') {
      if (!model.digests || match[3] !== undefined) return send(400, 'Bad Request\n')
      const digests = new DigestBuilder()
      for (const line of indexLines(mount)) digests.add(line)
      return send(200, digests.body())
    }
    const body = `${indexLines(mount, match[3] ?? '').join('')}\n`
    model.served.indexBytes += Buffer.byteLength(body)
    send(200, body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  model.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return model
}
