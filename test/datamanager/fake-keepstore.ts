import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

/** A keepstore that answers `/mounts` and the lists normally and serves its index however the test says. */
export interface FakeKeepstore {
  port: number
  mount: string
  /** Bodies of `PUT /trash` and `PUT /pull`, in order. */
  lists: Array<{ path: string; body: string }>
  /** Index bytes written so far, and whether the datamanager hung up on the index. */
  index: { written: number; closed: boolean }
}

/**
 * Writes the index of the one mount: `write(chunk)` resolves when the socket
 * took it (backpressure), `closed()` says the client went away.
 */
export type IndexWriter = (out: { write(chunk: Buffer | string): Promise<boolean>; end(): void; closed(): boolean }) => Promise<void>

/** An HTTP server on loopback port 0 standing in for a keepstore (one mount, `mount`). */
export async function startFakeKeepstore(t: Test, i: number, writeIndex: IndexWriter): Promise<FakeKeepstore> {
  const mount = `zzzzz-nyw5e-${String(i).padStart(7, '0')}00000000`
  const lists: FakeKeepstore['lists'] = []
  const index = { written: 0, closed: false }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? ''
    if (req.method === 'GET' && url === '/mounts') {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify([{ uuid: mount, device_id: `fake:${i}`, allow_write: true, allow_trash: true, replication: 1, storage_classes: { default: true } }]))
      return
    }
    if (req.method === 'GET' && url.startsWith(`/mounts/${mount}/blocks`)) {
      res.setHeader('content-type', 'text/plain')
      let closed = false
      res.on('close', () => {
        closed = true
        index.closed = true
      })
      const out = {
        write: (chunk: Buffer | string): Promise<boolean> => {
          if (closed) return Promise.resolve(false)
          index.written += chunk.length
          if (res.write(chunk)) return Promise.resolve(true)
          return new Promise((resolve) => {
            const done = (): void => {
              res.off('drain', done)
              res.off('close', done)
              resolve(!closed)
            }
            res.on('drain', done)
            res.on('close', done)
          })
        },
        end: () => res.end(),
        closed: () => closed,
      }
      writeIndex(out).catch(() => res.destroy())
      return
    }
    if (req.method === 'PUT' && (url === '/trash' || url === '/pull')) {
      const parts: Buffer[] = []
      req.on('data', (c: Buffer) => parts.push(c))
      req.on('end', () => {
        lists.push({ path: url, body: Buffer.concat(parts).toString() })
        res.end('')
      })
      return
    }
    res.statusCode = 400
    res.end('Bad Request\n')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return { port: (server.address() as AddressInfo).port, mount, lists, index }
}
