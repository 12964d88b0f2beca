import t from 'tap'
import net from 'node:net'
import { createHash } from 'node:crypto'
import { Writable } from 'node:stream'
import { createLogger } from '../../../shared/logger.js'
import { startCluster, call, ADMIN_TOKEN } from '../../helpers/cluster.js'
import { rawStatus } from '../../helpers/block-client.js'

const HASH = 'acbd18db4cc2f85cedef654fccc4a4d8'
const SIG = '89118b78732c33104a4d6231e8b5a5fa1e4301e3'
const UPPER = SIG.toUpperCase()
const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex')

/** Raw lines as written, so a leak anywhere in the line (or broken JSON) shows. */
function rawSink(): { lines: string[]; destination: Writable } {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(line)
      cb()
    },
  })
  return { lines, destination }
}

t.test('log lines never carry a signature, whatever field carries it and whatever its case', async (t) => {
  const { lines, destination } = rawSink()
  const log = createLogger({ destination, level: 'debug' })
  const variants = [`${HASH}+3+A${SIG}@7fffffff`, `${HASH}+3+A${UPPER}@7FFFFFFF`, `${HASH}+3+a${SIG}@7fffffff`, `${HASH}%2B3%2BA${SIG}%407fffffff`]
  for (const v of variants) {
    log.info({ path: `/${v}` }, 'request')
    log.warn({ err: new Error(`invalid locator ${v}`) }, 'failed')
    log.error({ item: { locator: v, servers: ['http://x'] } }, 'pull failed')
    log.info(`message text ${v}`)
    log.child({ locator: v }).info('child binding')
    log.info({ reasons: [`http://a: ${v}`] }, 'array of strings')
  }
  t.equal(lines.length, variants.length * 6)
  for (const line of lines) {
    t.notMatch(line.toLowerCase(), SIG, 'no signature')
    t.doesNotThrow(() => JSON.parse(line), 'still one JSON object')
  }
  t.match(JSON.parse(lines[0]!), { path: `/${HASH}+3+A[redacted]` }, 'the rest of the locator stays readable')
})

t.test('a malformed uppercase +A hint in a request path is not logged verbatim', async (t) => {
  const logs: object[] = []
  const cluster = await startCluster(t, { logs })
  const res = await call(cluster.urls[0]!, 'GET', `/${HASH}+3+A${UPPER}@7fffffff`, { token: ADMIN_TOKEN })
  t.equal(res.status, 400)
  const text = JSON.stringify(logs)
  t.match(text, HASH, 'the request was logged')
  t.notMatch(text.toLowerCase(), SIG, 'without its signature')
})

// Fields: client address, X-Forwarded-For, method, path without signature, status, bytes, duration, request id.
t.test('access log, as Keep\'s LogRequests and AddRequestIDs: one info line per request; a sane X-Request-Id is echoed, any other replaced', async (t) => {
  const logs: Array<Record<string, unknown>> = []
  const cluster = await startCluster(t, { logs })
  const url = cluster.urls[0]!
  const user = 'user-token-abcdefghijklmnopqrstuvwxyz'
  const put = await call(url, 'PUT', `/${HASH}`, { body: 'foo', headers: { 'x-request-id': 'client-req-1', 'x-forwarded-for': '203.0.113.7, 10.0.0.1' } })
  t.equal(put.headers['x-request-id'], 'client-req-1', 'a sane incoming id is echoed')
  const signed = put.text.trim() // unsigned: no token was given
  const get = await call(url, 'GET', `/${HASH}+3+A${SIG}@7fffffff`, { token: user, headers: { 'x-request-id': 'bad id with spaces' } })
  t.match(get.headers['x-request-id'], /^req-[0-9a-f]{20}$/, 'an id with spaces is replaced by a generated one')
  const generated = await call(url, 'GET', '/index', { token: ADMIN_TOKEN, headers: { 'x-request-id': 'x'.repeat(129) } })
  t.match(generated.headers['x-request-id'], /^req-/, 'an over-long id too')
  const port = Number(new URL(url).port)
  await rawStatus(port, `TOUCH /${HASH}+3 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nX-Request-Id: touch-9\r\n\r\n`)

  // A chunked body that overruns its size hint gets its 400 before the rest arrives; Node then detaches req.socket.
  const big = Buffer.alloc(400_000, 1)
  const overrun = net.connect(port, '127.0.0.1')
  overrun.on('error', () => undefined)
  let answer = ''
  overrun.on('data', (d: Buffer) => (answer += d.toString('latin1')))
  overrun.write(`PUT /${md5(big.subarray(1))}+${big.length - 1} HTTP/1.1\r\nHost: x\r\nX-Request-Id: overrun-1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`)
  overrun.write(`${big.length.toString(16)}\r\n`)
  overrun.write(big)
  overrun.end('\r\n0\r\n\r\n')
  await new Promise((resolve) => overrun.once('close', resolve))
  t.match(answer, /^HTTP\/1\.1 400 /, 'the overrunning body → 400')

  const lines = logs.filter((l) => l.msg === 'request')
  t.equal(lines.length, 5, 'one line per request')
  t.match(lines[4], { reqId: 'overrun-1', method: 'PUT', status: 400, remoteAddr: /127\.0\.0\.1/ }, 'an early answer is logged with its client address too')
  t.ok(lines.every((l) => l.level === 30), 'at info')
  t.match(lines[0], { reqId: 'client-req-1', remoteAddr: /^(::ffff:)?127\.0\.0\.1$/, forwardedFor: '203.0.113.7, 10.0.0.1', method: 'PUT', path: `/${HASH}`, status: 200, bytesIn: 3, bytesOut: 0, ms: Number })
  t.equal(signed, `${HASH}+3`)
  t.match(lines[1], { reqId: get.headers['x-request-id'], method: 'GET', path: `/${HASH}+3+A[redacted]`, status: 400 }, 'the signature is scrubbed from the path')
  t.notOk('forwardedFor' in lines[1]!, 'no X-Forwarded-For, no field')
  t.match(lines[2], { method: 'GET', path: '/index', status: 200, bytesOut: generated.body.length })
  t.match(lines[3], { reqId: 'touch-9', method: 'TOUCH', path: `/${HASH}+3`, status: 200, remoteAddr: /127\.0\.0\.1/ }, 'TOUCH, answered outside Koa, is logged too')
  const text = JSON.stringify(logs)
  t.notMatch(text, user, 'no token')
  t.notMatch(text, ADMIN_TOKEN, 'no admin token')
  t.notMatch(text.toLowerCase(), SIG, 'no signature')
})
