import http from 'node:http'
import { lstatSync, readFileSync, readdirSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { CORRUPTION_KINDS, type CorruptionKind, corruptBlock, hasMkfifo, releaseFifo } from '../helpers/corrupt-block.js'
import { startCluster } from '../helpers/cluster.js'
import { figure, progress, scale } from '../helpers/soak.js'
import { bytes, chunked, md5, seededRandom } from '../helpers/volume-suite.js'

const USER = 'user-token-abcdefghijklmnopqrstuvwxyz'
/** Liveness only: a request that has not finished by then counts as hung (it is a failure, never a wait). */
const DEADLINE_MS = 5000
const MiB = 1024 * 1024
/** Around the 1 MiB read chunk: one chunk, exactly one, one and a bit, several. */
const SIZES = [1, 100, 4096, 65_537, MiB - 1, MiB, MiB + 1, 2 * MiB + 3]

interface Answer {
  status: number
  /** The whole body arrived (length = Content-Length) and the response ended cleanly. */
  complete: boolean
  body: Buffer
  hung: boolean
}

/** One request on its own connection, over in DEADLINE_MS whatever happens. */
function fetchBlock(url: string, method: 'GET' | 'HEAD', locator: string): Promise<Answer> {
  return new Promise((resolve) => {
    const signal = AbortSignal.timeout(DEADLINE_MS)
    const req = http.request(`${url}/${locator}`, { method, headers: { authorization: `Bearer ${USER}` }, signal, agent: false })
    let settled = false
    const done = (a: Answer): void => {
      if (!settled) resolve(a)
      settled = true
    }
    req.on('error', () => done({ status: 0, complete: false, body: Buffer.alloc(0), hung: signal.aborted }))
    req.on('response', (res) => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('error', () => undefined)
      res.on('close', () => {
        const body = Buffer.concat(parts)
        const whole = method === 'HEAD' || body.length === Number(res.headers['content-length'])
        done({ status: res.statusCode ?? 0, complete: res.complete && whole, body, hung: signal.aborted })
      })
    })
    req.end()
  })
}

t.test('corruption: no corrupt block is ever served whole, HEAD says 502, and the scrubber finds every one', async (t) => {
  const kinds = CORRUPTION_KINDS.filter((k) => k !== 'fifo' || hasMkfifo())
  if (kinds.length < CORRUPTION_KINDS.length) t.comment('no mkfifo here: the fifo case is left out')
  const n = scale('corruptions', 60, 1000)
  const cluster = await startCluster(t, { volumes: [{ driver: 'directory' }] })
  const ks = cluster.keepstores[0]!
  const volume = ks.keepstore.mounts[0]!.volume
  const root = cluster.config.keepstores[0]!.volumes[0]!.root!
  const scratch = path.join(cluster.dir, 'scratch')
  await mkdir(scratch)
  const rng = seededRandom(20260101)
  const fileOf = (hash: string): string => `${root}/${hash.slice(0, 3)}/${hash}`

  // Every case and every good block a different hash: 1-byte blocks repeat after 256, and two
  // corruptions of one file (a FIFO, then a bit flip that reads it) would test the test.
  const good = Array.from({ length: Math.max(10, Math.floor(n / 4)) }, (_, i) => bytes(SIZES[i % SIZES.length] as number, 1_000_000 + i))
  const seen = new Set(good.map((d) => md5(d)))
  const cases: Array<{ hash: string; size: number; kind: CorruptionKind }> = []
  for (let i = 0; cases.length < n; i++) {
    const data = bytes(SIZES[Math.floor(rng() * SIZES.length)] as number, i)
    if (seen.has(md5(data))) continue
    seen.add(md5(data))
    await volume.write(md5(data), chunked(data))
    cases.push({ hash: md5(data), size: data.length, kind: kinds[cases.length % kinds.length]! })
  }
  for (const data of good) await volume.write(md5(data), chunked(data))
  const fingerprint = (hash: string): string => {
    const st = lstatSync(fileOf(hash), { bigint: true })
    return `${st.ino}:${st.size}:${st.mtimeNs}:${md5(readFileSync(fileOf(hash)))}`
  }
  const before = good.map((d) => fingerprint(md5(d)))
  for (const [i, c] of cases.entries()) {
    await corruptBlock(fileOf(c.hash), c.hash, c.kind, { rng, other: good[i % good.length]!, scratchDir: scratch })
  }

  const results: Array<{ kind: CorruptionKind; get: Answer; head: Answer; bad: boolean }> = []
  const probe = async (c: (typeof cases)[number]): Promise<void> => {
    const locator = ks.keepstore.locatorFor(c.hash, c.size, USER)
    const [get, head] = await Promise.all([fetchBlock(ks.url, 'GET', locator), fetchBlock(ks.url, 'HEAD', locator)])
    results.push({ kind: c.kind, get, head, bad: get.status === 200 && get.complete && md5(get.body) !== c.hash })
    progress('corruptions', results.length, cases.length)
  }
  // Regular files and entries that cannot block first, one at a time; FIFOs last, all at once, so a
  // driver that blocks on them costs one deadline and starves nothing else of libuv's four threads.
  for (const c of cases.filter((c) => c.kind !== 'fifo')) await probe(c)
  const fifos = cases.filter((c) => c.kind === 'fifo').map((c) => c.hash)
  await Promise.all(cases.filter((c) => c.kind === 'fifo').map(probe))
  // Whatever still blocks on a FIFO (server side of an abandoned request) is let go from here on.
  const release = (): void => {
    for (const hash of fifos) {
      const dir = path.dirname(fileOf(hash))
      for (const name of readdirSync(dir)) if (name.startsWith(hash)) releaseFifo(path.join(dir, name))
    }
  }
  const releaser = setInterval(release, 20)
  t.teardown(() => clearInterval(releaser))

  const report = await ks.scrubber.scrubOnce()
  await ks.close()
  clearInterval(releaser)
  release()

  const completeBad = results.filter((r) => r.bad).length
  const head502 = results.filter((r) => r.head.status === 502).length
  const hung = results.filter((r) => r.get.hung || r.head.hung).length
  for (const kind of kinds) {
    const of = results.filter((r) => r.kind === kind)
    const heads = of.map((r) => (r.head.hung ? 'hung' : String(r.head.status)))
    const gets = of.map((r) => (r.get.hung ? 'hung' : `${r.get.status}${r.get.complete ? '' : ' cut'}`))
    t.comment(`${kind}: HEAD ${[...new Set(heads)].join('/')}; GET ${[...new Set(gets)].join('/')} (${of.length} cases)`)
  }
  const headPct = Math.round((1000 * head502) / results.length) / 10
  figure(t, 'corruption', { corruptions: n, complete_bad_bodies: completeBad, head_502_pct: headPct, hung, scrub_found: report.corrupt_found, scrub_expected: n })
  t.equal(results.length, n, 'every corruption was probed')
  t.equal(completeBad, 0, 'no complete body with the wrong MD5')
  t.equal(headPct, 100, 'HEAD answers 502 for every corruption')
  t.equal(hung, 0, 'no request hung')
  t.match(report, { corrupt_found: n, quarantined: n, errors: 0, complete: true }, 'the scrubber found and quarantined every one')
  t.same(good.map((d) => fingerprint(md5(d))), before, 'good blocks untouched')
})
