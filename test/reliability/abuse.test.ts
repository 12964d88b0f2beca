import t, { type Test } from 'tap'
import net from 'node:net'
import path from 'node:path'
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { writeFile, mkdir, readdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'undici'
import { freePorts, ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY, call } from '../helpers/cluster.js'
import { scale, figure, progress, isSoak } from '../helpers/soak.js'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const bin = path.join(repo, 'bin/keepstore')
const md5 = (b: string | Buffer): string => createHash('md5').update(b).digest('hex')
const LIVENESS_MS = 5000
const USER = `v2/zzzzz-gj3su-000000000000001/${'u'.repeat(40)}`

interface Child {
  child: ChildProcess
  url: string
  port: number
  volume: string
  dir: string
}

/** A keepstore in its own process (bin/keepstore), so its fds and RSS are its own. */
async function startChild(t: Test, extra: string): Promise<Child> {
  const dir = t.testdir({})
  const [port] = await freePorts(1)
  const volume = path.join(dir, 'disk0')
  await mkdir(volume, { recursive: true })
  const file = path.join(dir, 'cluster.yml')
  await writeFile(
    file,
    `cluster:
  id: zzzzz
  systemRootToken: ${ADMIN_TOKEN}
  managementToken: ${MANAGEMENT_TOKEN}
  blobSigningKey: ${SIGNING_KEY}
keepstores:
  - uuid: zzzzz-bi6l4-000000000000000
    url: http://127.0.0.1:${port}
    stateDir: state
${extra}
    volumes:
      - uuid: zzzzz-nyw5e-000000000000000
        root: disk0
`,
  )
  const child = spawn(process.execPath, [bin, '--config', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } })
  child.stderr!.resume()
  const exited = new Promise((r) => child.once('exit', r))
  t.teardown(async () => {
    child.kill('SIGKILL')
    await exited
  })
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (child.exitCode !== null) throw new Error('keepstore exited')
    const ok = await call(url, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN }).then((r) => r.status === 200, () => false)
    if (ok) break
    await new Promise((r) => setTimeout(r, 50))
  }
  return { child, url, port: port!, volume, dir }
}

const procStatus = (pid: number, key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024
const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length
const MiB = 1024 * 1024

function socket(port: number): net.Socket {
  const s = net.connect(port, '127.0.0.1')
  s.on('error', () => undefined)
  return s
}

async function connected(sockets: net.Socket[]): Promise<void> {
  await Promise.all(sockets.map((s) => (s.readyState === 'open' ? undefined : new Promise((r) => s.once('connect', r).once('close', r)))))
}

/** One raw request; the reply's status (0 when the socket closed without one). */
async function rawStatus(port: number, bytes: string | Buffer): Promise<number> {
  const s = socket(port)
  s.write(bytes)
  let data = ''
  s.on('data', (d) => (data += d.toString('latin1')))
  await new Promise((r) => s.once('close', r))
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)
}

async function timedGet(url: string, locator: string): Promise<{ status: number; ms: number }> {
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const res = await Promise.race([
    call(url, 'GET', `/${locator}`, { token: USER }),
    new Promise<{ status: number }>((r) => (timer = setTimeout(() => r({ status: 0 }), LIVENESS_MS))),
  ]).finally(() => clearTimeout(timer))
  return { status: res.status, ms: performance.now() - started }
}

// One keepstore process for every part (starting one costs a second or two).
const WRITES = 4
const ks = await startChild(t, `    maxConcurrentWrites: ${WRITES}\n    bodyIdleTimeout: 2m\n    headerTimeout: 2m`)

t.test('abuse: slowloris headers and slow-body PUTs held open → signed GETs still answer', async (t) => {
  const put = await call(ks.url, 'PUT', `/${md5('alive')}`, { body: 'alive', token: USER })
  const signed = put.text.trim()
  const n = scale('abuse_sockets', 50, 500)
  const held: net.Socket[] = []
  t.teardown(() => held.forEach((s) => s.destroy()))
  for (let i = 0; i < n; i++) {
    const header = socket(ks.port)
    header.write('GET /index HTTP/1.1\r\nHost: x\r\nX-Slow: ') // never finishes its head
    const body = socket(ks.port)
    body.write(`PUT /${md5(`slow ${i}`)} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx`)
    held.push(header, body)
    progress('abuse-slow-sockets', i + 1, n)
  }
  await connected(held)
  const latencies: number[] = []
  for (let i = 0; i < 10; i++) {
    const r = await timedGet(ks.url, signed)
    t.equal(r.status, 200, `GET ${i} answered within ${LIVENESS_MS} ms`)
    latencies.push(r.ms)
  }
  latencies.sort((a, b) => a - b)
  const open = held.filter((s) => !s.destroyed).length
  figure(t, 'abuse-slow-clients', {
    slowloris_sockets: n,
    slow_body_puts: n,
    still_open: open,
    get_ms_median: Math.round(latencies[latencies.length >> 1]!),
    get_ms_max: Math.round(latencies.at(-1)!),
    gets_ok: latencies.length,
  })
})

t.test('abuse: many concurrent large PUTs → RSS bounded, the excess gets 503', async (t) => {
  const writes = WRITES
  const count = scale('abuse_big_puts', 10, 100)
  const size = isSoak() ? 64 * MiB : 2 * MiB
  const block = randomBytes(size)
  const hash = md5(block)
  const pid = ks.child.pid!
  const before = procStatus(pid, 'VmRSS')
  const statuses = await Promise.all(
    Array.from({ length: count }, async () => {
      const res = await request(`${ks.url}/${hash}`, { method: 'PUT', body: block }).catch(() => undefined)
      if (!res) return 0
      await res.body.dump()
      return res.statusCode
    }),
  )
  const peak = procStatus(pid, 'VmHWM')
  const ok = statuses.filter((s) => s === 200).length
  const busy = statuses.filter((s) => s === 503).length
  // A 503 sent while the client is still sending its body closes the connection; the client may see the reset first.
  const reset = statuses.filter((s) => s === 0).length
  t.ok(ok >= 1, 'some PUTs stored the block')
  t.equal(ok + busy + reset, count, 'every PUT is 200 or refused (503, or the connection closed after it)')
  if (count > 2 * writes) t.ok(busy >= 1, 'beyond the write pool and its queue → 503')
  // Bound: the write slots' buffers, not the bodies: a few MiB per write in flight plus the runtime.
  const bound = 512 * MiB
  t.ok(peak - before <= bound, `RSS growth ${Math.round((peak - before) / MiB)} MiB ≤ ${bound / MiB} MiB`)
  figure(t, 'abuse-big-puts', { puts: count, block_mib: size / MiB, ok, busy_503: busy, reset, rss_growth_mib: Math.round((peak - before) / MiB), bound_mib: bound / MiB })
})

t.test('abuse: request smuggling probes and evil paths → 400, nothing outside the volume', async (t) => {
  const h = md5('x')
  const probes: Array<[string, string]> = [
    ['Transfer-Encoding and Content-Length', `PUT /${h} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n`],
    ['two differing Content-Lengths', `PUT /${h} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx`],
    ['a Content-Length list', `PUT /${h} HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\nxx`],
    ['obs-fold', `GET /index HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n ${ADMIN_TOKEN}\r\n\r\n`],
    ['chunked, then not chunked', `PUT /${h} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n1\r\nx\r\n0\r\n\r\n`],
    ['a space before the colon', `GET /index HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n`],
    ['a bare LF line end', `GET /index HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n0\n\n`],
  ]
  for (const [name, bytes] of probes) t.equal(await rawStatus(ks.port, bytes), 400, name)
  const parentBefore = (await readdir(ks.dir)).sort()
  const evil = [
    '/../x',
    '/..%2f..%2fetc%2fpasswd',
    '/%2e%2e/%2e%2e/x',
    `/%2e%2e%2f${h}`,
    `/${h}%2f..`,
    `/${h}%00`,
    '/%00',
    `/${'a'.repeat(8000)}`,
  ]
  for (const p of evil) {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const status = await rawStatus(ks.port, `${method} ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx`)
      t.ok(status === 400 || status === 431, `${method} ${p.slice(0, 40)} → ${status}`)
    }
  }
  t.same((await readdir(ks.dir)).sort(), parentBefore, 'nothing created beside the volume')
  const stored = (await call(ks.url, 'GET', '/index', { token: ADMIN_TOKEN })).text
  t.notMatch(stored, h, 'no probe stored its block')
  figure(t, 'abuse-probes', { smuggling_probes: probes.length, evil_paths: evil.length * 3, all_400: true })
})

t.test('abuse: aborted GETs and PUTs leave no open files behind', async (t) => {
  const pid = ks.child.pid!
  const big = randomBytes(4 * MiB)
  const put = await call(ks.url, 'PUT', `/${md5(big)}`, { body: big, token: USER })
  const signed = put.text.trim()
  await call(ks.url, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN })
  const baseline = fdCount(pid)
  const n = scale('abuse_aborts', 100, 10_000)
  const wave = 50
  for (let done = 0; done < n; done += wave) {
    await Promise.all(
      Array.from({ length: Math.min(wave, n - done) }, (_, i) =>
        new Promise<void>((resolve) => {
          const s = socket(ks.port)
          s.once('close', () => resolve())
          if ((done + i) % 2 === 0) {
            s.write(`GET /${signed} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${USER}\r\n\r\n`)
            s.once('data', () => s.destroy()) // cut off after the first bytes of the body
          } else {
            s.write(`PUT /${md5(`aborted ${done + i}`)} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n`)
            s.write(randomBytes(1000), () => setImmediate(() => s.destroy()))
          }
        }),
      ),
    )
    progress('abuse-aborts', Math.min(done + wave, n), n)
  }
  let fds = fdCount(pid)
  const deadline = Date.now() + LIVENESS_MS
  while (Math.abs(fds - baseline) > 5 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
    fds = fdCount(pid)
  }
  t.ok(Math.abs(fds - baseline) <= 5, `open fds ${fds}, baseline ${baseline} (± 5)`)
  // The server removes an aborted write's temp file once its abort reaches the write: allow it the
  // same liveness deadline (a temp file that is never removed still fails here).
  const tempsLeft = async (): Promise<string[]> => (await readdir(ks.volume, { recursive: true })).map(String).filter((n) => n.includes('.tmp-'))
  let temps = await tempsLeft()
  while (temps.length > 0 && Date.now() < deadline + LIVENESS_MS) {
    await new Promise((r) => setTimeout(r, 50))
    temps = await tempsLeft()
  }
  t.same(temps, [], 'no temp file left behind')
  figure(t, 'abuse-aborts', { aborted: n, fd_baseline: baseline, fd_after: fds })
})
