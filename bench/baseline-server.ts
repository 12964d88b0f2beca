/**
 * The bare-Node floor the keepstore is measured against: node:http and fs
 * streams doing the same durable work per block — PUT hashes the body while
 * writing a temp file, fsyncs it, renames it to `root/<hash[0:3]>/<hash>` and
 * fsyncs the directory (and the root, after creating a prefix directory, as
 * the keepstore does); GET streams the file, hashing it as it goes (a block
 * store must never serve a corrupt body without noticing). No auth, no
 * signatures, no logging, no framework.
 *
 * Run as a child: `node dist/bench/baseline-server.js ROOT [--no-get-md5]`;
 * prints `{"port":N}` once listening on 127.0.0.1, stops on SIGTERM.
 */
import http from 'node:http'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { pipeline } from 'node:stream/promises'

const HASH_RE = /^\/([0-9a-f]{32})(?:\+|$)/
const READ_CHUNK = 256 * 1024

const rootArg = process.argv[2]
const hashOnGet = !process.argv.includes('--no-get-md5')
if (!rootArg) {
  process.stderr.write('usage: baseline-server ROOT [--no-get-md5]\n')
  process.exit(2)
}
const root: string = rootArg
const made = new Set<string>()

function reply(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

async function put(hash: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const dir = `${root}/${hash.slice(0, 3)}`
  if (!made.has(dir)) {
    // As the keepstore: a prefix directory it creates is made durable in the root
    // (else a crash could lose the directory, and every block fsynced into it).
    const created = await mkdir(dir).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return false
        throw err
      },
    )
    if (created) await syncDir(root)
    made.add(dir)
  }
  const tmp = `${dir}/.${hash}.tmp-${randomBytes(6).toString('hex')}`
  const handle = await open(tmp, 'wx')
  const md5 = createHash('md5')
  let size = 0
  try {
    for await (const chunk of req) {
      md5.update(chunk as Buffer)
      size += (chunk as Buffer).length
      await handle.write(chunk as Buffer)
    }
    await handle.sync()
  } finally {
    await handle.close()
  }
  if (md5.digest('hex') !== hash) {
    await unlink(tmp)
    return reply(res, 400, 'hash mismatch\n')
  }
  await rename(tmp, `${dir}/${hash}`)
  await syncDir(dir)
  reply(res, 200, `${hash}+${size}\n`)
}

async function get(hash: string, res: http.ServerResponse): Promise<void> {
  const path = `${root}/${hash.slice(0, 3)}/${hash}`
  let size: number
  try {
    size = (await stat(path)).size
  } catch {
    return reply(res, 404, 'not found\n')
  }
  res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': size })
  const file = createReadStream(path, { highWaterMark: READ_CHUNK })
  if (hashOnGet) {
    const md5 = createHash('md5')
    file.on('data', (chunk) => md5.update(chunk))
    file.on('end', () => {
      if (md5.digest('hex') !== hash) res.destroy()
    })
  }
  await pipeline(file, res)
}

const server = http.createServer((req, res) => {
  const m = HASH_RE.exec(req.url ?? '')
  const work =
    m && req.method === 'PUT' ? put(m[1]!, req, res) : m && req.method === 'GET' ? get(m[1]!, res) : Promise.resolve(reply(res, 400, 'Bad Request\n'))
  work.catch((err: unknown) => {
    if (!res.headersSent) reply(res, 500, `${(err as Error).message}\n`)
    else res.destroy()
  })
})
server.keepAliveTimeout = 65_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`)
})
process.once('SIGTERM', () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
})
