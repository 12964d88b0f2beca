import t from 'tap'
import net from 'node:net'
import { PassThrough } from 'node:stream'
import { createHash } from 'node:crypto'
import dc from 'node:diagnostics_channel'
import { request } from 'undici'
import { startCluster, call, ADMIN_TOKEN, MANAGEMENT_TOKEN } from '../../helpers/cluster.js'

const md5 = (b: string): string => createHash('md5').update(b).digest('hex')

/**
 * Resolves once the in-process server has taken a request for `path`: the
 * channel fires just before the server's 'request' event, and a promise
 * continuation runs only after that synchronous dispatch (which is where the
 * concurrency limiter counts or queues it).
 */
function arrival(path: string): Promise<void> {
  return new Promise((resolve) => {
    const on = (message: unknown): void => {
      if ((message as { request: { url?: string } }).request.url !== path) return
      dc.unsubscribe('http.server.request.start', on)
      resolve()
    }
    dc.subscribe('http.server.request.start', on)
  })
}

t.test('maxConcurrentRequests: a queue of the same size, then 503; health exempt', async (t) => {
  const cluster = await startCluster(t, { keepstore: { maxConcurrentRequests: 1 } })
  const url = cluster.urls[0]!
  const list = '[]'
  const body = new PassThrough()
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
  const firstIn = arrival('/trash')
  const first = request(`${url}/trash`, { method: 'PUT', body, headers: { ...auth, 'content-length': String(list.length) } })
  body.write('[')
  // The first request now holds the only slot (its body is still coming); the next one queues.
  await firstIn
  const secondIn = arrival('/trash')
  const second = call(url, 'GET', '/trash', { token: ADMIN_TOKEN })
  await secondIn
  const third = await call(url, 'GET', '/mounts', { token: ADMIN_TOKEN })
  t.equal(third.status, 503, 'beyond running + queue → 503 at once')
  t.equal((await call(url, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN })).status, 200, 'health is exempt')
  t.equal((await call(url, 'PUT', `/${md5('block')}`, { body: 'block' })).status, 200, 'block writes have their own pool')
  body.end(']')
  t.equal((await first).statusCode, 200)
  await (await first).body.dump()
  t.equal((await second).status, 200, 'the queued request ran once a slot was free')
})

t.test('headerTimeout: a client that never finishes its headers is cut off', async (t) => {
  const cluster = await startCluster(t, { keepstore: { headerTimeout: '300ms' } })
  const { port } = new URL(cluster.urls[0]!)
  const sock = net.connect(Number(port), '127.0.0.1')
  let data = ''
  sock.on('data', (d) => (data += d.toString()))
  sock.write('GET /index HTTP/1.1\r\nHost: x\r\n') // and nothing more
  await new Promise<void>((resolve) => sock.on('close', () => resolve()))
  t.match(data, /^HTTP\/1\.1 408/, 'answered 408 and closed')
})
