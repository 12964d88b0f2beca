import t from 'tap'
import net from 'node:net'
import path from 'node:path'
import { readdir } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { startCluster, call, ADMIN_TOKEN } from '../../helpers/cluster.js'

const md5 = (b: string): string => createHash('md5').update(b).digest('hex')
const LIVENESS_MS = 5000

/** A raw PUT that sends its headers and one byte of a 10-byte body, then nothing. */
function slowPut(port: number, hash: string): { socket: net.Socket; reply: Promise<string>; closed: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1')
  socket.write(`PUT /${hash} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx`)
  let data = ''
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const reply = new Promise<string>((resolve) => {
    socket.on('data', (d) => {
      data += d.toString()
      if (data.includes('\r\n\r\n')) resolve(data)
    })
    socket.once('close', () => resolve(data))
  })
  socket.on('error', () => undefined)
  return { socket, reply, closed }
}

function within<T>(ms: number, p: Promise<T>): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)))
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...(await walk(p)))
    else out.push(p)
  }
  return out
}

t.test('write pool: slow-body PUTs fill only the write pool; reads and list PUTs still answer, excess PUTs get 503', async (t) => {
  const cluster = await startCluster(t, {
    volumes: [{ driver: 'directory' }],
    keepstore: { maxConcurrentRequests: 4, maxConcurrentWrites: 2, bodyIdleTimeout: '1m' },
  })
  const url = cluster.urls[0]!
  const port = Number(new URL(url).port)
  const stored = await call(url, 'PUT', `/${md5('readable')}`, { body: 'readable', token: ADMIN_TOKEN })
  t.equal(stored.status, 200)
  const signed = stored.text.trim()
  const puts = Array.from({ length: 12 }, (_, i) => slowPut(port, md5(`slow ${i}`)))
  t.teardown(() => puts.forEach((p) => p.socket.destroy()))
  // 2 run and 2 wait in the write pool; the other 8 are refused at once.
  const refused = puts.slice(4).map((p) => p.reply)
  const replies = await within(LIVENESS_MS, Promise.all(refused))
  t.not(replies, 'timeout', 'the excess PUTs were answered')
  if (replies !== 'timeout') t.ok(replies.every((r) => /^HTTP\/1\.1 503/.test(r)), 'every excess PUT got 503')
  const get = await within(LIVENESS_MS, call(url, 'GET', `/${signed}`, { token: ADMIN_TOKEN }))
  t.not(get, 'timeout', 'a signed GET answered within the liveness deadline')
  if (get !== 'timeout') t.equal(get.status, 200)
  const list = await within(LIVENESS_MS, call(url, 'PUT', '/trash', { token: ADMIN_TOKEN, body: '[]' }))
  t.not(list, 'timeout', 'a list PUT is not starved by block writes')
  if (list !== 'timeout') t.equal(list.status, 200)
  t.equal(cluster.keepstores[0]!.writes.inUse, 2, 'two writes hold the write pool')
})

t.test('write pool: a body idle past bodyIdleTimeout is cut: socket closed, no block, no temp file', async (t) => {
  const cluster = await startCluster(t, { volumes: [{ driver: 'directory' }], keepstore: { bodyIdleTimeout: '200ms' } })
  const url = cluster.urls[0]!
  const port = Number(new URL(url).port)
  const hash = md5('never finished')
  const put = slowPut(port, hash)
  t.teardown(() => put.socket.destroy())
  t.not(await within(LIVENESS_MS, put.closed), 'timeout', 'the server closed the stalled socket')
  t.notMatch((await call(url, 'GET', '/index', { token: ADMIN_TOKEN })).text, hash, 'no block')
  const files = await walk(path.join(cluster.dir, 'ks0-vol0'))
  t.same(files.filter((f) => f.includes('.tmp-')), [], 'no temp file left')
  t.equal(cluster.keepstores[0]!.writes.inUse, 0, 'the write slot was given back')
  // The list path is guarded the same way.
  const list = net.connect(port, '127.0.0.1')
  list.on('error', () => undefined)
  t.teardown(() => list.destroy())
  list.write(`PUT /pull HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Length: 10\r\n\r\n[`)
  t.not(await within(LIVENESS_MS, new Promise((r) => list.once('close', r))), 'timeout', 'a stalled list body is cut too')
})

t.test('write pool: pull writes wait for a write slot', async (t) => {
  const cluster = await startCluster(t, { keepstores: 2, keepstore: { maxConcurrentWrites: 1 } })
  const [a, b] = cluster.urls as [string, string]
  const data = 'pulled later'
  t.equal((await call(a, 'PUT', `/${md5(data)}`, { body: data })).status, 200)
  const writes = cluster.keepstores[1]!.writes
  const release = await writes.acquire()
  const body = JSON.stringify([{ locator: `${md5(data)}+${data.length}`, servers: [a] }])
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body })).status, 200)
  const deadline = Date.now() + LIVENESS_MS
  while (writes.waiting === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  t.equal(writes.waiting, 1, 'the pull write waits for the slot')
  t.notMatch((await call(b, 'GET', '/index', { token: ADMIN_TOKEN })).text, md5(data), 'not written yet')
  release()
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.equal(JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text).done, 1, 'then it ran')
})
