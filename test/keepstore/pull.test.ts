import t, { type Test } from 'tap'
import http from 'node:http'
import net from 'node:net'
import { createHash } from 'node:crypto'
import { startCluster, call, ADMIN_TOKEN, type TestCluster } from '../helpers/cluster.js'

const md5 = (b: string | Buffer): string => createHash('md5').update(b).digest('hex')
const block = (s: string): { data: string; hash: string; locator: string } => ({ data: s, hash: md5(s), locator: `${md5(s)}+${Buffer.byteLength(s)}` })

async function put(url: string, data: string): Promise<void> {
  const res = await call(url, 'PUT', `/${md5(data)}`, { body: data })
  if (res.status !== 200) throw new Error(`PUT failed: ${res.status} ${res.text}`)
}

async function indexOf(url: string, mount?: string): Promise<string[]> {
  const res = await call(url, 'GET', mount ? `/mounts/${mount}/blocks` : '/index', { token: ADMIN_TOKEN })
  return res.text.split('\n').filter(Boolean).map((l) => l.split('+')[0]!)
}

function pullList(items: Array<{ locator: string; servers: string[]; mount_uuid?: string }>): string {
  return JSON.stringify(items)
}

/**
 * Replaces keepstore i of a started cluster by a fake source that records
 * requests and answers them as `respond` decides: a keepstore "of the cluster"
 * that misbehaves on purpose.
 */
async function fakeSource(
  t: Test,
  cluster: TestCluster,
  i: number,
  respond: (path: string, res: http.ServerResponse) => void,
): Promise<string[]> {
  const seen: string[] = []
  const port = Number(new URL(cluster.urls[i]!).port)
  await cluster.keepstores[i]!.close()
  const server = http.createServer((req, res) => {
    seen.push(req.url ?? '')
    respond(req.url ?? '', res)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise((r) => server.close(r))
  })
  return seen
}

t.test('pull: an operator-style PUT /pull moves blocks, replies as listed', async (t) => {
  const cluster = await startCluster(t, { keepstores: 2 })
  const [a, b] = cluster.urls as [string, string]
  const blocks = ['one', 'two', 'three'].map(block)
  for (const x of blocks) await put(a, x.data)
  const res = await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pullList(blocks.map((x) => ({ locator: x.locator, servers: [a] }))) })
  t.equal(res.status, 200)
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.same((await indexOf(b)).sort(), blocks.map((x) => x.hash).sort(), 'every block arrived')
  const status = JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as Record<string, unknown>
  t.match(status, { queued: 0, in_progress: 0, done: 3, failed: 0, items: [] })
  t.match(status.digest, /^[0-9a-f]{64}$/)
  t.equal((await call(b, 'GET', '/pull', { token: 'nope' })).status, 403, 'GET /pull is admin only')
  t.equal((await call(b, 'PUT', '/pull', { body: '[]' })).status, 401, 'PUT /pull is admin only')
})

t.test('pull: invalid lists → 400 with a reason, and the previous list stays', async (t) => {
  const cluster = await startCluster(t, { keepstores: 2 })
  const [a, b] = cluster.urls as [string, string]
  // A list that cannot finish: its only source never answers, so it stays queued behind it.
  const seen = await fakeSource(t, cluster, 0, () => undefined)
  const good = pullList([
    { locator: block('x').locator, servers: [a] },
    { locator: block('y').locator, servers: [a] },
  ])
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: good })).status, 200)
  const before = JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { digest: string; items: unknown[] }
  const rows: Array<{ name: string; body: string }> = [
    { name: 'invalid JSON', body: '[{' },
    { name: 'not an array', body: '{"locator":"x"}' },
    { name: 'no size hint', body: pullList([{ locator: block('z').hash, servers: [a] }]) },
    { name: 'a server that is not a keepstore of the cluster', body: pullList([{ locator: block('z').locator, servers: ['http://127.0.0.1:1'] }]) },
    { name: 'an unknown mount', body: pullList([{ locator: block('z').locator, servers: [a], mount_uuid: 'zzzzz-nyw5e-nosuchmount0000' }]) },
    { name: 'an invalid locator', body: pullList([{ locator: 'xyz+1', servers: [a] }]) },
  ]
  for (const row of rows) {
    const res = await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: row.body })
    t.equal(res.status, 400, `${row.name} → 400`)
    t.match(res.text, /^[^\n]+\n$/, `${row.name}: one line`)
  }
  // Raw, so that the 413 is read as sent (a client library would fail on the unsent body instead).
  const big = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(Number(new URL(b).port), '127.0.0.1')
    let data = ''
    sock.on('data', (d) => (data += d.toString()))
    sock.on('error', reject)
    sock.on('close', () => resolve(data))
    sock.write(`PUT /pull HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Length: ${64 * 1024 * 1024 + 1}\r\n\r\n[`)
  })
  t.match(big, /^HTTP\/1\.1 413 /, 'an oversized list → 413')
  const after = JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { digest: string; items: unknown[] }
  t.equal(after.digest, before.digest, 'the accepted list is still the current one')
  t.same(after.items, before.items)
  t.ok(seen.length >= 1, 'the first item went to its source')
})

t.test('pull: replacing the list mid-item restarts from the top of the new list; dropped items never run; [] clears', async (t) => {
  const cluster = await startCluster(t, { keepstores: 3, keepstore: { pullConcurrency: 1 } })
  const [, b, c] = cluster.urls as [string, string, string]
  const [x, y, z, w] = ['x', 'y', 'z', 'w'].map(block) as [ReturnType<typeof block>, ReturnType<typeof block>, ReturnType<typeof block>, ReturnType<typeof block>]
  await put(c, z.data)
  await put(c, w.data)
  let release: () => void = () => undefined
  const held = new Promise<void>((r) => (release = r))
  const seen = await fakeSource(t, cluster, 0, (path, res) => {
    void held.then(() => {
      res.writeHead(404)
      res.end('not here\n')
    })
    void path
  })
  const a = cluster.urls[0]!
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pullList([{ locator: x.locator, servers: [a] }, { locator: y.locator, servers: [a] }]) })).status, 200)
  while (seen.length === 0) await new Promise((r) => setImmediate(r)) // item x is now in progress
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pullList([{ locator: z.locator, servers: [c] }, { locator: w.locator, servers: [c] }]) })).status, 200)
  const mid = JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { queued: number; in_progress: number; items: Array<{ locator: string }> }
  t.same(mid.items.map((i) => i.locator), [z.locator, w.locator], 'the new list is queued from its top')
  t.equal(mid.in_progress, 1, 'the old item in progress finishes')
  release()
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.same(seen.map((p) => p.slice(1, 33)), [x.hash], 'y, dropped before it started, was never fetched')
  t.same((await indexOf(b)).sort(), [z.hash, w.hash].sort(), 'the new list ran')

  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pullList([{ locator: x.locator, servers: [a] }]) })).status, 200)
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: '[]' })).status, 200)
  await cluster.keepstores[1]!.worklists.pull.idle()
  const cleared = JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { queued: number }
  t.equal(cleared.queued, 0, '[] clears the list')
})

t.test('pull: first server failing → the next one; all failing → logged and skipped; bad bytes rejected', async (t) => {
  const logs: object[] = []
  const cluster = await startCluster(t, { keepstores: 3, logs })
  const [, b, c] = cluster.urls as [string, string, string]
  const good = block('good block')
  const lost = block('nobody has this')
  const liar = block('the truth')
  await put(c, good.data)
  const seen = await fakeSource(t, cluster, 0, (path, res) => {
    if (path.startsWith(`/${liar.hash}`)) {
      res.writeHead(200, { 'content-length': String(Buffer.byteLength(liar.data)) })
      res.end('the trutH') // same length, wrong bytes
    } else {
      res.writeHead(500)
      res.end('boom\n')
    }
  })
  const a = cluster.urls[0]!
  const list = [
    { locator: good.locator, servers: [a, c] },
    { locator: lost.locator, servers: [a, c] },
    { locator: liar.locator, servers: [a] },
  ]
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pullList(list) })).status, 200)
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.same(await indexOf(b), [good.hash], 'only the good block arrived, from the second server')
  t.ok(seen.some((p) => p.startsWith(`/${good.hash}+`) && /\+A[0-9a-f]{40}@[0-9a-f]{8}/.test(p)), 'the first server was tried first, with a signed locator')
  const status = JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { done: number; failed: number }
  t.match(status, { done: 1, failed: 2 })
  const failure = logs.find((l) => (l as { msg?: string; hash?: string }).msg === 'pull failed on every server' && (l as { hash?: string }).hash === lost.hash) as
    | { servers: string[]; reasons: string[] }
    | undefined
  t.ok(failure, 'a failed pull is logged with block, servers and reasons')
  t.same(failure?.servers, [a, c])
  t.equal(failure?.reasons.length, 2)
  t.ok(logs.some((l) => (l as { hash?: string; msg?: string }).hash === liar.hash && (l as { msg?: string }).msg === 'pull failed on every server'), 'bytes that fail MD5 are rejected')
  const metrics = await call(b, 'GET', '/metrics', { token: (await import('../helpers/cluster.js')).MANAGEMENT_TOKEN })
  t.match(metrics.text, /keepstore_pull_bytes_total \d+/)
  t.match(metrics.text, /keepstore_pull_failures_total\{reason="[A-Z_]+"\} \d+/)
})

t.test('pull: blocks land on the named mount; later entries for the same block and mount are dropped, other mounts kept', async (t) => {
  // One worker: at the default concurrency the three entries start together and no drop could be seen.
  const cluster = await startCluster(t, { keepstores: 2, volumes: [{ driver: 'memory' }, { driver: 'memory', storageClasses: ['archive'] }], keepstore: { pullConcurrency: 1 } })
  const [a, b] = cluster.urls as [string, string]
  const x = block('class act')
  await put(a, x.data)
  const mounts = cluster.config.keepstores[1]!.volumes.map((v) => v.uuid) as [string, string]
  const list = [
    { locator: x.locator, servers: [a], mount_uuid: mounts[1] },
    { locator: x.locator, servers: [a], mount_uuid: mounts[1] },
    { locator: x.locator, servers: [a], mount_uuid: mounts[0] },
  ]
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pullList(list) })).status, 200)
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.same(await indexOf(b, mounts[1]), [x.hash], 'on the named mount')
  t.same(await indexOf(b, mounts[0]), [x.hash], 'the entry for another mount stayed and ran')
  const status = JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { done: number; skipped: number; failed: number }
  t.equal(status.done, 2, 'two transfers')
  t.equal(status.skipped, 0, 'the duplicate entry was dropped, not run and skipped')
  t.equal(status.failed, 0)
})

t.test('pull: an entry whose target already holds the block is skipped without asking any server', async (t) => {
  const cluster = await startCluster(t, { keepstores: 2, keepstore: { pullConcurrency: 1 } })
  const [a, b] = cluster.urls as [string, string]
  const x = block('already here')
  await put(b, x.data)
  const seen = await fakeSource(t, cluster, 0, (_p, res) => {
    res.writeHead(500)
    res.end()
  })
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pullList([{ locator: x.locator, servers: [a] }, { locator: x.locator, servers: [a] }]) })).status, 200)
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.same(seen, [], 'no server was asked')
  t.match(JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text), { done: 0, skipped: 1, failed: 0, queued: 0 }, 'the skip dropped the later duplicate too')
})

t.test('pull: concurrent entries for one block and mount share one transfer; other mounts get their own', async (t) => {
  const cluster = await startCluster(t, { keepstores: 2, volumes: [{ driver: 'memory' }, { driver: 'memory' }], keepstore: { pullConcurrency: 4 } })
  const b = cluster.urls[1]!
  const x = block('shared transfer')
  let release: () => void = () => undefined
  const held = new Promise<void>((r) => (release = r))
  let arrived: () => void = () => undefined
  const bothArrived = new Promise<void>((r) => (arrived = r))
  const seen = await fakeSource(t, cluster, 0, (_p, res) => {
    if (seen.length === 2) arrived()
    void held.then(() => {
      res.writeHead(200, { 'content-length': String(x.data.length) })
      res.end(x.data)
    })
  })
  const a = cluster.urls[0]!
  const mounts = cluster.config.keepstores[1]!.volumes.map((v) => v.uuid) as [string, string]
  const list = [
    { locator: x.locator, servers: [a], mount_uuid: mounts[0] },
    { locator: x.locator, servers: [a], mount_uuid: mounts[0] },
    { locator: x.locator, servers: [a], mount_uuid: mounts[1] },
  ]
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pullList(list) })).status, 200)
  await bothArrived
  release()
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.equal(seen.length, 2, 'one request per target mount, not per entry')
  t.same(await indexOf(b, mounts[0]), [x.hash])
  t.same(await indexOf(b, mounts[1]), [x.hash])
  t.match(JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text), { done: 2, skipped: 1, failed: 0 })
})

t.test('pull: a failed transfer is not remembered — the same entry in the next list pulls again', async (t) => {
  const cluster = await startCluster(t, { keepstores: 2 })
  const b = cluster.urls[1]!
  const x = block('second time lucky')
  let good = false
  await fakeSource(t, cluster, 0, (_p, res) => {
    if (!good) {
      res.writeHead(500)
      res.end('not yet\n')
      return
    }
    res.writeHead(200, { 'content-length': String(x.data.length) })
    res.end(x.data)
  })
  const a = cluster.urls[0]!
  const body = pullList([{ locator: x.locator, servers: [a] }])
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body })).status, 200)
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.match(JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text), { failed: 1 })
  good = true
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body })).status, 200)
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.match(JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text), { done: 1, failed: 0 })
  t.same(await indexOf(b), [x.hash])
})

t.test('pull: a restarted keepstore resumes its persisted list', async (t) => {
  const cluster = await startCluster(t, { keepstores: 3, volumes: [{ driver: 'directory' }], keepstore: { pullConcurrency: 1 } })
  const [, b, c] = cluster.urls as [string, string, string]
  const blocks = ['r1', 'r2', 'r3'].map(block)
  for (const x of blocks) await put(c, x.data)
  // The first item hangs on a source that holds every request until released, so the rest stays queued.
  const a = cluster.urls[0]!
  let release: () => void = () => undefined
  const held = new Promise<void>((r) => (release = r))
  const seen = await fakeSource(t, cluster, 0, (_path, res) => {
    void held.then(() => {
      res.writeHead(404)
      res.end('not here\n')
    })
  })
  const stuck = block('stuck')
  const list = [{ locator: stuck.locator, servers: [a] }, ...blocks.map((x) => ({ locator: x.locator, servers: [c] }))]
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pullList(list) })).status, 200)
  const digest = (JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { digest: string }).digest
  const restarted = await cluster.restart(1)
  const resumed = JSON.parse((await call(restarted.url, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { digest: string; queued: number; in_progress: number }
  t.equal(resumed.digest, digest, 'the same list')
  t.equal(resumed.queued + resumed.in_progress, 4, 'nothing was lost')
  // The stuck item now fails (its source answers 404); the list goes on by itself.
  release()
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.same((await indexOf(restarted.url)).sort(), blocks.map((x) => x.hash).sort())
  t.ok(seen.filter((p) => p.startsWith(`/${stuck.hash}+`)).length >= 1, 'the resumed list started from its first item')
  const status = JSON.parse((await call(restarted.url, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { done: number; failed: number }
  t.match(status, { done: 3, failed: 1 })
})

t.test('pull: a source that never sends its headers fails after the headers timeout and the list goes on', async (t) => {
  const cluster = await startCluster(t, { keepstores: 3, keepstore: { pullConcurrency: 1 }, pullHeadersTimeoutMs: 200 })
  const [, b, c] = cluster.urls as [string, string, string]
  const good = block('after the silent one')
  await put(c, good.data)
  const a = cluster.urls[0]!
  const seen = await fakeSource(t, cluster, 0, () => undefined)
  const silent = block('silence')
  t.equal((await call(b, 'PUT', '/pull', { token: ADMIN_TOKEN, body: pullList([{ locator: silent.locator, servers: [a] }, { locator: good.locator, servers: [c] }]) })).status, 200)
  await cluster.keepstores[1]!.worklists.pull.idle()
  t.equal(seen.length, 1, 'the silent source was asked once')
  t.same(await indexOf(b), [good.hash], 'the next item ran')
  const status = JSON.parse((await call(b, 'GET', '/pull', { token: ADMIN_TOKEN })).text) as { done: number; failed: number }
  t.match(status, { done: 1, failed: 1 })
})
