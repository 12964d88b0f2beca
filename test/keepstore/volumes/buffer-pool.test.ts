import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { BufferPool, readBuffers } from '../../../keepstore/volumes/buffer-pool.js'
import { SIGNING_KEY, call } from '../../helpers/cluster.js'
import { serveWithFaults } from '../../helpers/fault-app.js'
import { createSigner } from '../../../shared/signer.js'
import { md5 } from '../../helpers/volume-suite.js'

const TOKEN = 'user-token-abcdefghijklmnopqrstuvwxyz'

t.test('buffer pool: a buffer comes back once, and only a buffer it lent', async (t) => {
  const pool = new BufferPool(1024, 2)
  const a = pool.take()
  t.equal(a.length, 1024)
  pool.give(a.subarray(0, 10)) // a view of a lent buffer brings the whole buffer back
  pool.give(a) // a second give of the same buffer is ignored
  const b = pool.take()
  const c = pool.take()
  t.equal(b.buffer, a.buffer, 'the given buffer is reused')
  t.not(c.buffer, a.buffer, 'and handed out once only')
  pool.give(Buffer.alloc(1024)) // never lent: ignored
  pool.give(b)
  pool.give(c)
  const again = [pool.take(), pool.take(), pool.take()]
  t.equal(new Set(again.map((x) => x.buffer)).size, 3, 'three distinct buffers')
  t.ok(again.some((x) => x.buffer === b.buffer) && again.some((x) => x.buffer === c.buffer), 'the two given back, then a fresh one')
})

t.test('GET: a pooled read buffer goes back only once the socket wrote it (a stalled reader still gets exact bytes)', async (t) => {
  let reads = 0
  const app = await serveWithFaults(t, (op) => {
    if (op === 'read') reads++
  })
  // 8 MiB: more than the socket buffers of a reader that reads nothing take (~3 MiB), so a chunk waits on the server.
  const stalled = randomBytes(8 * 1024 * 1024)
  t.equal((await call(app.url, 'PUT', `/${md5(stalled)}`, { body: stalled })).status, 200)
  const socket = net.connect(Number(new URL(app.url).port), '127.0.0.1')
  socket.pause()
  const locator = createSigner({ key: SIGNING_KEY, ttlSeconds: 336 * 3600, maxClockSkewSeconds: 600 }).sign(`${md5(stalled)}+${stalled.length}`, TOKEN)
  socket.write(`GET /${locator} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`)
  // Five 1 MiB reads: at least three chunks went to the socket, and it takes no more than about three.
  reads = 0
  for (const deadline = Date.now() + 5000; reads < 5 && Date.now() < deadline; ) await delay(5)
  await delay(20)
  // Every idle buffer of the pool (at most 64) is taken and scribbled on: one given back too early is among them.
  const idle = Array.from({ length: 65 }, () => readBuffers.take().fill(0))
  for (const b of idle) readBuffers.give(b)
  const received: Buffer[] = []
  socket.on('data', (chunk: Buffer) => received.push(chunk))
  socket.resume()
  await once(socket, 'end')
  const response = Buffer.concat(received)
  const body = response.subarray(response.indexOf('\r\n\r\n') + 4)
  t.equal(body.length, stalled.length, 'the whole body')
  t.equal(md5(body), md5(stalled), 'exactly the stalled block')
})
