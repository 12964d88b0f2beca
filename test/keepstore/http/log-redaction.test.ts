import t from 'tap'
import { Writable } from 'node:stream'
import { createLogger } from '../../../shared/logger.js'
import { startCluster, call, ADMIN_TOKEN } from '../../helpers/cluster.js'

const HASH = 'acbd18db4cc2f85cedef654fccc4a4d8'
const SIG = '89118b78732c33104a4d6231e8b5a5fa1e4301e3'
const UPPER = SIG.toUpperCase()

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
