import { createHash } from 'node:crypto'
import net from 'node:net'
import path from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { getIndex } from '../helpers/block-client.js'
import { startCluster } from '../helpers/cluster.js'
import { figure, progress, scale } from '../helpers/soak.js'
import { auditVolume } from '../helpers/volume-audit.js'
import { bytes } from '../helpers/volume-suite.js'

const md5 = (data: Uint8Array): string => createHash('md5').update(data).digest('hex')

/** Log lines of the in-process keepstore, with a way to await the access-log line of one request. */
class WatchedLogs extends Array<object> {
  private waiters = new Map<string, () => void>()
  private seen = new Set<string>()

  override push(...items: object[]): number {
    for (const item of items) {
      const reqId = (item as { reqId?: unknown; msg?: unknown }).msg === 'request' ? (item as { reqId?: string }).reqId : undefined
      if (reqId === undefined) continue
      this.seen.add(reqId)
      this.waiters.get(reqId)?.()
    }
    return this.length
  }

  /** Resolves once the keepstore logged the end of request `reqId` (its handler and any cleanup are done). */
  finished(reqId: string, deadlineMs = 5000): Promise<boolean> {
    if (this.seen.has(reqId)) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), deadlineMs)
      this.waiters.set(reqId, () => {
        clearTimeout(timer)
        this.waiters.delete(reqId)
        resolve(true)
      })
    })
  }
}

type Kind = 'other-bytes' | 'digit-off' | 'uppercase' | 'short-hash' | 'long-hash' | 'size-off' | 'size-zero' | 'size-huge' | 'truncated' | 'aborted' | 'chunked-overrun'

interface BadCase {
  kind: Kind
  size: number
  seed: number
  /** Which digit / how many bytes: a second free parameter for each kind. */
  k: number
}

interface Plan {
  locator: string
  head: Record<string, string>
  /** Body parts sent in order; `end` says how the client finishes. */
  parts: Buffer[]
  end: 'complete' | 'half-close' | 'destroy'
}

function flipDigit(hash: string, i: number): string {
  const d = hash[i]!
  return `${hash.slice(0, i)}${d === '0' ? '1' : '0'}${hash.slice(i + 1)}`
}

function chunk(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')])
}

function plan(c: BadCase): Plan {
  // A body cut short needs at least one byte to leave out.
  const cut = c.kind === 'truncated' || c.kind === 'aborted'
  const data = bytes(cut ? Math.max(1, c.size) : c.size, c.seed)
  const hash = md5(data)
  const whole = (locator: string): Plan => ({ locator, head: { 'content-length': String(data.length) }, parts: [data], end: 'complete' })
  switch (c.kind) {
    case 'other-bytes':
      return whole(`${md5(Buffer.concat([data, Buffer.from([c.k & 255])]))}+${data.length}`)
    case 'digit-off':
      return whole(`${flipDigit(hash, c.k % 32)}+${data.length}`)
    case 'uppercase': {
      const upper = hash.toUpperCase()
      return whole(`${upper === hash ? `A${hash.slice(1)}` : upper}+${data.length}`)
    }
    case 'short-hash':
      return whole(`${hash.slice(0, 31)}+${data.length}`)
    case 'long-hash':
      return whole(`${hash}${hash[c.k % 32]}+${data.length}`)
    case 'size-off':
      return whole(`${hash}+${data.length + (c.k % 2 === 0 || data.length === 0 ? 1 : -1)}`)
    case 'size-zero':
      return whole(`${hash}+${data.length === 0 ? 1 : 0}`)
    case 'size-huge':
      return whole(`${hash}+${[64 * 1024 * 1024 + 1, 2 ** 53, 10 ** 30][c.k % 3]!.toLocaleString('en-US', { useGrouping: false })}`)
    case 'truncated': {
      const sent = Math.max(0, data.length - 1 - (c.k % Math.max(1, data.length)))
      return { locator: `${hash}+${data.length}`, head: { 'content-length': String(data.length) }, parts: [data.subarray(0, sent)], end: 'half-close' }
    }
    case 'aborted': {
      const sent = Math.floor(data.length * ((c.k % 100) / 100))
      return { locator: `${hash}+${data.length}`, head: { 'content-length': String(data.length) }, parts: [data.subarray(0, sent)], end: 'destroy' }
    }
    case 'chunked-overrun': {
      const extra = bytes(1 + (c.k % 5000), c.seed + 1)
      const body = Buffer.concat([data, extra])
      const cut = Math.floor(body.length / 2)
      return {
        locator: `${hash}+${data.length}`,
        head: { 'transfer-encoding': 'chunked' },
        parts: [chunk(body.subarray(0, cut)), chunk(body.subarray(cut)), Buffer.from('0\r\n\r\n')],
        end: 'complete',
      }
    }
  }
}

/** Sends one request over a raw socket; resolves with the status line's code, or 0 when the connection was cut first. */
async function send(port: number, reqId: string, p: Plan): Promise<number> {
  const socket = net.connect(port, '127.0.0.1')
  let answer = ''
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')))
  const closed = new Promise<void>((resolve) => {
    socket.on('close', () => resolve())
    socket.on('error', () => undefined)
  })
  const head = Object.entries({ host: '127.0.0.1', 'x-request-id': reqId, connection: 'close', ...p.head })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  socket.write(`PUT /${p.locator} HTTP/1.1\r\n${head}\r\n`)
  for (const part of p.parts) if (part.length > 0) socket.write(part)
  if (p.end === 'half-close') socket.end()
  if (p.end === 'destroy') await new Promise<void>((resolve) => socket.write('', () => resolve())).then(() => socket.destroy())
  await closed
  const m = /^HTTP\/1\.1 (\d{3})/.exec(answer)
  return m ? Number(m[1]) : 0
}

const KINDS: Kind[] = ['other-bytes', 'digit-off', 'uppercase', 'short-hash', 'long-hash', 'size-off', 'size-zero', 'size-huge', 'truncated', 'aborted', 'chunked-overrun']

t.test('keepstore: bad locators, wrong size hints, truncated, aborted and overrunning bodies store nothing and leave no temp file', async (t) => {
  const cases = scale('cases', 500, 10000)
  const logs = new WatchedLogs()
  const cluster = await startCluster(t, { volumes: [{ driver: 'directory' }], cluster: { blobSigning: false }, logs })
  const port = cluster.keepstores[0]!.port
  const root = path.join(cluster.dir, 'ks0-vol0')
  let n = 0
  let stored = 0
  let tempLeft = 0
  const statuses = new Map<string, Set<number>>()
  let firstFailure: object | undefined
  t.teardown(() => {
    if (firstFailure) t.comment(`first failing case: ${JSON.stringify(firstFailure)}`)
  })
  const arbitrary = fc.record({
    kind: fc.constantFrom(...KINDS),
    // Mostly small bodies, now and then one of a few hundred kB (several socket chunks).
    size: fc.oneof({ weight: 9, arbitrary: fc.nat(4096) }, { weight: 1, arbitrary: fc.nat(400_000) }),
    seed: fc.nat(),
    k: fc.nat(1_000_000),
  })
  await fc.assert(
    fc.asyncProperty(arbitrary, async (c) => {
      const reqId = `bad-${n++}`
      const status = await send(port, reqId, plan(c))
      const done = await logs.finished(reqId)
      const audit = auditVolume(root)
      stored += audit.blocks.size
      tempLeft += audit.temps.length
      if (!statuses.has(c.kind)) statuses.set(c.kind, new Set())
      statuses.get(c.kind)!.add(status)
      progress('bad-bodies cases', n, cases)
      // Rejected: a 4xx, or the connection cut (0) for bodies that never completed.
      const rejected = (status >= 400 && status < 500) || (status === 0 && ['truncated', 'aborted', 'chunked-overrun'].includes(c.kind))
      const ok = done && rejected && audit.blocks.size === 0 && audit.temps.length === 0
      if (!ok && !firstFailure) firstFailure = { case: c, status, done, blocks: [...audit.blocks.keys()], temps: audit.temps }
      return ok
    }),
    { numRuns: cases, seed: Number(process.env.KEEP_SOAK_SEED ?? 9) },
  )
  t.same((await getIndex(cluster.urls[0]!)).blocks.size, 0, 'the index is empty')
  t.comment(`statuses by kind: ${[...statuses].map(([k, s]) => `${k}=${[...s].sort().join('/')}`).join(' ')}`)
  t.equal(stored, 0, `${cases} bad requests stored nothing`)
  t.equal(tempLeft, 0, 'and left no temp file')
  figure(t, 'bad-bodies', { cases, stored, temp_left: tempLeft })
})
