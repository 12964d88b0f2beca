import net from 'node:net'
import { createHash } from 'node:crypto'
import { type Dispatcher, request } from 'undici'
import { ADMIN_TOKEN } from './cluster.js'

const md5 = (data: Uint8Array): string => createHash('md5').update(data).digest('hex')

export interface PutOutcome {
  status: number
  /** The response body (a locator on 200). */
  text: string
}

/** PUT /<hash>+<size>; resolves with the status once the whole response was read, rejects on a cut connection. */
export async function putBlock(url: string, data: Buffer, options: { dispatcher?: Dispatcher; hash?: string; requestId?: string } = {}): Promise<PutOutcome> {
  const hash = options.hash ?? md5(data)
  const res = await request(`${url}/${hash}+${data.length}`, {
    method: 'PUT',
    body: data,
    headers: options.requestId ? { 'x-request-id': options.requestId } : {},
    ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
  })
  return { status: res.statusCode, text: await res.body.text() }
}

/** GET a block (blobSigning off) and report whether its bytes hash to its name. */
export async function getBlock(url: string, hash: string, size: number, dispatcher?: Dispatcher): Promise<{ status: number; verified: boolean }> {
  const res = await request(`${url}/${hash}+${size}`, { method: 'GET', ...(dispatcher ? { dispatcher } : {}) })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, verified: res.statusCode === 200 && body.length === size && md5(body) === hash }
}

export interface IndexListing {
  /** hash → size, one entry per line. */
  blocks: Map<string, number>
  mtimes: Map<string, bigint>
  /** The final empty line was there (a complete listing). */
  complete: boolean
}

/** GET /index as the admin. */
export async function getIndex(url: string, dispatcher?: Dispatcher): Promise<IndexListing> {
  const res = await request(`${url}/index`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    ...(dispatcher ? { dispatcher } : {}),
  })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`GET /index: ${res.statusCode} ${text}`)
  const blocks = new Map<string, number>()
  const mtimes = new Map<string, bigint>()
  const lines = text.split('\n')
  const complete = text.endsWith('\n\n') || text === '\n'
  for (const line of lines) {
    const m = /^([0-9a-f]{32})\+(\d+) (\d+)$/.exec(line)
    if (!m) continue
    blocks.set(m[1]!, Number(m[2]))
    mtimes.set(m[1]!, BigInt(m[3]!))
  }
  return { blocks, mtimes, complete }
}

/** An admin request with a JSON answer (GET /pull, GET /trash, GET /status) or a JSON body (PUT /pull, PUT /trash). */
export async function adminJson(url: string, method: 'GET' | 'PUT', path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await request(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  })
  const text = await res.body.text()
  let json: unknown = text
  try {
    json = JSON.parse(text)
  } catch {
    // plain-text answers (errors, "OK") stay text
  }
  return { status: res.statusCode, json }
}

/** One raw request (the method may be one Node's parser rejects, such as TOUCH); the status of the reply. */
export async function rawStatus(port: number, head: string): Promise<number> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => undefined)
  socket.write(head)
  let data = ''
  socket.on('data', (d) => (data += d.toString()))
  await new Promise((r) => socket.once('close', r))
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)
}
