import t, { type Test } from 'tap'
import net from 'node:net'
import { createHash } from 'node:crypto'
import { request } from 'undici'
import { startCluster, call, ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY } from '../../helpers/cluster.js'
import { createSigner } from '../../../shared/signer.js'

const md5 = (b: string | Buffer): string => createHash('md5').update(b).digest('hex')
const FOO = 'foo'
const FOO_HASH = md5(FOO) // acbd18db4cc2f85cedef654fccc4a4d8
const USER = 'user-token-abcdefghijklmnopqrstuvwxyz'
const T0 = 1_800_000_000_000 // ms; a fixed "now"

async function setup(tt: Test, options: Parameters<typeof startCluster>[1] = {}) {
  const clock = { now: T0 }
  const cluster = await startCluster(tt, { ...options, now: () => clock.now, cluster: { blobSigningTTL: '1h', ...options.cluster } })
  const url = cluster.urls[0]!
  const signer = createSigner({ key: SIGNING_KEY, ttlSeconds: 3600, maxClockSkewSeconds: 600, now: () => clock.now })
  return { cluster, url, clock, signer }
}

/** Sends a raw request (for the TOUCH method Node's parser refuses) and returns status + body. */
function raw(url: string, text: string | string[]): Promise<{ status: number; head: string; body: string }> {
  const { port } = new URL(url)
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), '127.0.0.1')
    let data = ''
    sock.on('data', (d) => (data += d.toString()))
    sock.on('error', reject)
    sock.on('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n')
      resolve({ status: Number(head.split(' ')[1]), head, body })
    })
    const parts = Array.isArray(text) ? text : [text]
    const send = (i: number): void => {
      if (i >= parts.length) return
      sock.write(parts[i]!)
      setImmediate(() => send(i + 1))
    }
    send(0)
  })
}

t.test('PUT', async (t) => {
  const { url, signer } = await setup(t)
  const rows: Array<{ name: string; path: string; body: string | Buffer; token?: string; headers?: Record<string, string>; status: number }> = [
    { name: 'a block with its hash → 200', path: `/${FOO_HASH}`, body: FOO, status: 200 },
    { name: 'with a matching size hint → 200', path: `/${FOO_HASH}+3`, body: FOO, status: 200 },
    { name: 'body MD5 differs from the hash → 400', path: `/${FOO_HASH}`, body: 'bar', status: 400 },
    { name: 'size hint differs from the body → 400', path: `/${FOO_HASH}+4`, body: FOO, status: 400 },
    { name: 'invalid locator → 400', path: `/${FOO_HASH.toUpperCase()}`, body: FOO, status: 400 },
    { name: 'a storage class no volume has → 507', path: `/${FOO_HASH}`, body: FOO, headers: { 'x-keep-storage-classes': 'archive' }, status: 507 },
    { name: 'the default class → 200', path: `/${FOO_HASH}`, body: FOO, headers: { 'x-keep-storage-classes': 'default' }, status: 200 },
    { name: 'the empty block → 200', path: `/${md5('')}+0`, body: '', status: 200 },
  ]
  for (const row of rows) {
    const res = await call(url, 'PUT', row.path, { body: row.body, ...(row.token ? { token: row.token } : {}), ...(row.headers ? { headers: row.headers } : {}) })
    t.equal(res.status, row.status, row.name)
    if (res.status !== 200) t.match(res.text, /^[^\n]+\n$/, `${row.name}: a one-line reason`)
  }

  const unsigned = await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })
  t.equal(unsigned.text, `${FOO_HASH}+3\n`, 'without a token the reply is unsigned')
  t.equal(unsigned.headers['x-keep-replicas-stored'], '1')
  t.equal(unsigned.headers['x-keep-storage-classes-confirmed'], 'default=1')

  const signed = await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO, token: USER })
  t.equal(signed.text, `${signer.sign(`${FOO_HASH}+3`, USER)}\n`, 'with a token the reply is signed for it')
})

t.test('PUT: Content-Length over 64 MiB → 413 at once, connection closed', async (t) => {
  const { url } = await setup(t)
  const res = await raw(url, `PUT /${FOO_HASH} HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * 1024 * 1024 + 1}\r\n\r\nfoo`)
  t.equal(res.status, 413)
  t.match(res.head.toLowerCase(), /connection: close/)
  const cont = await raw(url, `PUT /${FOO_HASH} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${64 * 1024 * 1024 + 1}\r\n\r\n`)
  t.equal(cont.status, 413, 'no 100 Continue for an oversized block')
  t.notMatch(cont.head, /100 Continue/)
})

t.test('GET and HEAD: signature checks in the order of §2', async (t) => {
  const { url, signer, clock } = await setup(t)
  await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })
  const good = signer.sign(`${FOO_HASH}+3`, USER)
  const expired = signer.sign(`${FOO_HASH}+3`, USER, Math.floor(clock.now / 1000) - 1)
  const tooFar = signer.sign(`${FOO_HASH}+3`, USER, Math.floor(clock.now / 1000) + 3600 + 600 + 60)
  const atCap = signer.sign(`${FOO_HASH}+3`, USER, Math.floor(clock.now / 1000) + 3600 + 600)
  const otherToken = signer.sign(`${FOO_HASH}+3`, 'someone-else')
  const absent = signer.sign(`${md5('absent')}+6`, USER)
  const rows: Array<{ name: string; method: string; path: string; token?: string; status: number }> = [
    { name: 'good signature → 200', method: 'GET', path: `/${good}`, token: USER, status: 200 },
    { name: 'signature at the expiry cap → 200', method: 'GET', path: `/${atCap}`, token: USER, status: 200 },
    { name: 'invalid locator → 400', method: 'GET', path: '/xyz', token: USER, status: 400 },
    { name: 'no size hint → 405', method: 'GET', path: `/${FOO_HASH}`, token: USER, status: 405 },
    { name: 'no token → 401', method: 'GET', path: `/${good}`, status: 401 },
    { name: 'no signature → 400', method: 'GET', path: `/${FOO_HASH}+3`, token: USER, status: 400 },
    { name: 'two signatures → 400', method: 'GET', path: `/${good}+A${'0'.repeat(40)}@7fffffff`, token: USER, status: 400 },
    { name: 'malformed signature → 400', method: 'GET', path: `/${FOO_HASH}+3+Axyz@1`, token: USER, status: 400 },
    { name: 'expired → 401', method: 'GET', path: `/${expired}`, token: USER, status: 401 },
    { name: 'expiry beyond now + TTL + skew → 400', method: 'GET', path: `/${tooFar}`, token: USER, status: 400 },
    { name: 'signed for another token → 400', method: 'GET', path: `/${otherToken}`, token: USER, status: 400 },
    { name: 'absent block → 404', method: 'GET', path: `/${absent}`, token: USER, status: 404 },
    { name: 'HEAD good → 200', method: 'HEAD', path: `/${good}`, token: USER, status: 200 },
    { name: 'HEAD without size hint is fine', method: 'HEAD', path: `/${signer.sign(FOO_HASH, USER)}`, token: USER, status: 200 },
    { name: 'HEAD expired → 401', method: 'HEAD', path: `/${expired}`, token: USER, status: 401 },
    { name: 'HEAD absent → 404', method: 'HEAD', path: `/${absent}`, token: USER, status: 404 },
  ]
  for (const row of rows) {
    const res = await call(url, row.method, row.path, row.token ? { token: row.token } : {})
    t.equal(res.status, row.status, row.name)
  }
  const got = await call(url, 'GET', `/${good}`, { token: USER })
  t.equal(got.text, FOO, 'exact bytes')
  t.equal(got.headers['content-length'], '3')
  const head = await call(url, 'HEAD', `/${good}`, { token: USER })
  t.equal(head.headers['content-length'], '3')
  t.equal(head.body.length, 0)
  const empty = await call(url, 'GET', `/${signer.sign(md5(''), USER)}`, { token: USER })
  t.equal(empty.status, 404, 'the empty block without size hint is allowed (absent here → 404, not 405)')
  t.test('as time passes the same signature expires', async (t) => {
    clock.now += 3601 * 1000
    t.equal((await call(url, 'GET', `/${good}`, { token: USER })).status, 401)
  })
})

t.test('GET without blobSigning needs no token', async (t) => {
  const { url } = await setup(t, { cluster: { blobSigning: false } })
  await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })
  const res = await call(url, 'GET', `/${FOO_HASH}+3`)
  t.equal(res.status, 200)
  t.equal(res.text, FOO)
})

t.test('corrupt stored data is never delivered', async (t) => {
  const { cluster, url, signer } = await setup(t, { volumes: [{ driver: 'directory' }] })
  const big = Buffer.alloc(3 * 1024 * 1024, 7)
  const bigHash = md5(big)
  t.equal((await call(url, 'PUT', `/${bigHash}`, { body: big })).status, 200)
  t.equal((await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })).status, 200)
  const { writeFile } = await import('node:fs/promises')
  const root = cluster.config.keepstores[0]!.volumes[0]!.root!
  await writeFile(`${root}/${FOO_HASH.slice(0, 3)}/${FOO_HASH}`, 'fox')
  const corruptBig = Buffer.from(big)
  corruptBig[corruptBig.length - 1] = 8
  await writeFile(`${root}/${bigHash.slice(0, 3)}/${bigHash}`, corruptBig)
  t.equal((await call(url, 'GET', `/${signer.sign(`${FOO_HASH}+3`, USER)}`, { token: USER })).status, 502, 'small block: nothing sent yet → 502')
  t.equal((await call(url, 'HEAD', `/${signer.sign(`${FOO_HASH}+3`, USER)}`, { token: USER })).status, 502, 'HEAD → 502')
  // A large block: the status went out before the last chunk was hashed, so the body must stop short.
  const res = await request(`${url}/${signer.sign(`${bigHash}+${big.length}`, USER)}`, { headers: { authorization: `Bearer ${USER}` } })
  let received = 0
  let error: unknown
  try {
    for await (const chunk of res.body) received += (chunk as Buffer).length
  } catch (err) {
    error = err
  }
  if (res.statusCode === 502) {
    t.pass('large block: 502 before any byte')
  } else {
    t.equal(res.statusCode, 200, 'large block: headers were already sent')
    t.equal(res.headers['content-length'], String(big.length))
    t.ok(error !== undefined, 'large block: reading the body fails')
    t.ok(received < big.length, `large block: ${received} of ${big.length} bytes, never all`)
  }
})

t.test('PUT: exactly 64 MiB is accepted, also with Expect: 100-continue', async (t) => {
  const { url } = await setup(t)
  const block = Buffer.alloc(64 * 1024 * 1024, 1)
  const hash = md5(block)
  const sock = net.connect(Number(new URL(url).port), '127.0.0.1')
  t.teardown(() => sock.destroy())
  const first = new Promise<string>((resolve) => sock.once('data', (d) => resolve(d.toString())))
  sock.write(`PUT /${hash}+${block.length} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${block.length}\r\n\r\n`)
  t.match(await first, /^HTTP\/1\.1 100 Continue/, 'the server asks for the body of an exactly 64 MiB block')
  sock.destroy()
  const res = await call(url, 'PUT', `/${hash}+${block.length}`, { body: block })
  t.equal(res.status, 200, 'exactly 64 MiB → 200')
  t.equal(res.text, `${hash}+${block.length}\n`)
})

t.test('GET: near misses of a signature over HTTP — one hex digit, one second, one token character', async (t) => {
  const { url, clock, signer } = await setup(t)
  await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })
  const good = signer.sign(`${FOO_HASH}+3`, USER)
  const at = good.indexOf('+A') + 2
  const flip = (i: number): string => good.slice(0, at + i) + (good[at + i] === '0' ? '1' : '0') + good.slice(at + i + 1)
  t.equal((await call(url, 'GET', `/${good}`, { token: USER })).status, 200, 'the signature as issued')
  t.equal((await call(url, 'GET', `/${flip(0)}`, { token: USER })).status, 400, 'first digit flipped → 400')
  t.equal((await call(url, 'GET', `/${flip(39)}`, { token: USER })).status, 400, 'last digit flipped → 400')
  t.equal((await call(url, 'GET', `/${good}`, { token: USER.slice(0, -1) })).status, 400, 'token one character short → 400')
  const expiry = parseInt(good.slice(-8), 16)
  clock.now = expiry * 1000
  t.equal((await call(url, 'GET', `/${good}`, { token: USER })).status, 200, 'at the expiry second itself → 200')
  clock.now = expiry * 1000 + 1
  t.equal((await call(url, 'GET', `/${good}`, { token: USER })).status, 401, '1 ms after the expiry → 401')
})

t.test('index: an error after output began leaves out the final empty line', async (t) => {
  const { url, cluster } = await setup(t)
  const datas = ['i1', 'i2', 'i3', 'i4']
  for (const d of datas) t.equal((await call(url, 'PUT', `/${md5(d)}`, { body: d })).status, 200)
  const volume = cluster.keepstores[0]!.keepstore.mounts[0]!.volume
  const real = volume.index.bind(volume)
  let failAfter = 2
  // One entry per batch, so the failure comes after the first lines went out.
  volume.indexBatches = async function* (prefix, options) {
    let n = 0
    for await (const entry of real(prefix, options)) {
      if (n++ === failAfter) throw Object.assign(new Error('EIO: disk gone mid-index'), { code: 'EIO' })
      yield [entry]
    }
  }
  const broken = await call(url, 'GET', '/index', { token: ADMIN_TOKEN })
  t.equal(broken.status, 200, 'the status went out with the first lines')
  const lines = broken.text.split('\n')
  t.equal(lines.length, 3, 'two lines, no more')
  t.match(lines[0], /^[0-9a-f]{32}\+2 \d+$/)
  t.match(lines[1], /^[0-9a-f]{32}\+2 \d+$/)
  t.equal(lines[2], '', 'the body ends with the last full line')
  t.notOk(broken.text.endsWith('\n\n'), 'no final empty line: a reader sees the index is incomplete')
  const perMount = await call(url, 'GET', `/mounts/${cluster.keepstores[0]!.keepstore.mounts[0]!.uuid}/blocks`, { token: ADMIN_TOKEN })
  t.notOk(perMount.text.endsWith('\n\n'), 'the per-mount index too')
  failAfter = 0
  const before = await call(url, 'GET', '/index', { token: ADMIN_TOKEN })
  t.equal(before.status, 500, 'an error before any output still gets an error status')
  t.notOk(before.text.endsWith('\n\n'))
  failAfter = 99
  const whole = await call(url, 'GET', '/index', { token: ADMIN_TOKEN })
  t.ok(whole.text.endsWith('\n\n'), 'without the fault the index ends with its empty line')
  t.equal(whole.text.split('\n').length, 6)
})

t.test('index: forms, order, terminator', async (t) => {
  const { url } = await setup(t, { volumes: [{ driver: 'memory' }, { driver: 'memory' }] })
  const blocks = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((s) => ({ s, h: md5(s) }))
  for (const b of blocks) t.equal((await call(url, 'PUT', `/${b.h}`, { body: b.s })).status, 200)
  const sorted = blocks.map((b) => b.h).sort()
  const all = await call(url, 'GET', '/index', { token: ADMIN_TOKEN })
  t.equal(all.status, 200)
  t.ok(all.text.endsWith('\n\n'), 'ends with one empty line')
  const lines = all.text.split('\n').slice(0, -2)
  t.same(lines.map((l) => l.split('+')[0]), sorted, 'sorted by hash across mounts')
  t.match(lines[0], /^[0-9a-f]{32}\+1 \d{19}$/)
  const p = sorted[0]!.slice(0, 1)
  const want = sorted.filter((h) => h.startsWith(p))
  for (const path of [`/index/${p}`, `/index?prefix=${p}`]) {
    const res = await call(url, 'GET', path, { token: ADMIN_TOKEN })
    t.same(res.text.split('\n').slice(0, -2).map((l) => l.split('+')[0]), want, `${path} filters by prefix`)
  }
  const rows: Array<{ name: string; path: string; token?: string; status: number }> = [
    { name: 'no token → 401', path: '/index', status: 401 },
    { name: 'non-admin token → 403', path: '/index', token: USER, status: 403 },
    { name: 'uppercase prefix → 400', path: '/index/ABC', token: ADMIN_TOKEN, status: 400 },
    { name: 'prefix too long → 400', path: `/index/${'a'.repeat(33)}`, token: ADMIN_TOKEN, status: 400 },
    { name: 'full hash prefix → 200', path: `/index/${sorted[0]}`, token: ADMIN_TOKEN, status: 200 },
  ]
  for (const row of rows) t.equal((await call(url, 'GET', row.path, row.token ? { token: row.token } : {})).status, row.status, row.name)
})

t.test('mounts and per-mount index', async (t) => {
  const { url, cluster } = await setup(t, { volumes: [{ driver: 'memory' }, { driver: 'memory', storageClasses: ['archive'], replication: 2 }] })
  const res = await call(url, 'GET', '/mounts', { token: ADMIN_TOKEN })
  t.equal(res.status, 200)
  const mounts = JSON.parse(res.text) as Array<Record<string, unknown>>
  const uuids = cluster.config.keepstores[0]!.volumes.map((v) => v.uuid).sort()
  t.same(mounts.map((m) => m.uuid), uuids, 'sorted by uuid')
  t.match(mounts[1], { allow_write: true, allow_trash: true, replication: 2, storage_classes: { archive: true }, device_id: `memory:${uuids[1]}` })
  await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO, headers: { 'x-keep-storage-classes': 'archive' } })
  const blocks = await call(url, 'GET', `/mounts/${uuids[1]}/blocks`, { token: ADMIN_TOKEN })
  t.match(blocks.text, new RegExp(`^${FOO_HASH}\\+3 \\d+\\n\\n$`))
  const none = await call(url, 'GET', `/mounts/${uuids[0]}/blocks/${FOO_HASH.slice(0, 2)}`, { token: ADMIN_TOKEN })
  t.equal(none.text, '\n', 'other mount: only the terminator')
  t.equal((await call(url, 'GET', '/mounts/zzzzz-nyw5e-nosuchmount0000/blocks', { token: ADMIN_TOKEN })).status, 404, 'unknown mount → 404')
})

t.test('digests: 000…fff, each `<prefix> <blocks> <sha256 of exactly the lines /mounts/<uuid>/blocks/<prefix> returns>`, then an empty line', async (t) => {
  const { url, cluster } = await setup(t, { volumes: [{ driver: 'directory' }] })
  const uuid = cluster.keepstores[0]!.keepstore.mounts[0]!.uuid
  const datas = Array.from({ length: 12 }, (_, i) => `digest block ${i}`)
  for (const d of datas) t.equal((await call(url, 'PUT', `/${md5(d)}`, { body: d })).status, 200)
  // One prefix with two blocks, so a digest covers more than one line.
  const extra = Array.from({ length: 5000 }, (_, i) => `same prefix ${i}`).find((d) => d !== datas[0] && md5(d).startsWith(md5(datas[0]!).slice(0, 3)))!
  t.equal((await call(url, 'PUT', `/${md5(extra)}`, { body: extra })).status, 200)
  const res = await call(url, 'GET', `/mounts/${uuid}/digests`, { token: ADMIN_TOKEN })
  t.equal(res.status, 200)
  t.ok(res.text.endsWith('\n\n'), 'ends with one empty line')
  const lines = res.text.split('\n').slice(0, -2)
  t.equal(lines.length, 4096, 'one line per prefix')
  t.ok(lines.every((l, i) => new RegExp(`^${i.toString(16).padStart(3, '0')} \\d+ [0-9a-f]{64}$`).test(l)), '000 to fff in order, <prefix> <blocks> <sha256 hex>')
  const used = new Set([...datas, extra].map((d) => md5(d).slice(0, 3)))
  for (const prefix of [...used, '000', 'fff', md5('unused').slice(0, 3)]) {
    const blocks = await call(url, 'GET', `/mounts/${uuid}/blocks/${prefix}`, { token: ADMIN_TOKEN })
    const text = blocks.text.slice(0, -1) // the final empty line excluded
    const want = `${prefix} ${text.split('\n').length - 1} ${createHash('sha256').update(text).digest('hex')}`
    t.equal(lines[parseInt(prefix, 16)], want, `prefix ${prefix}`)
  }
  t.equal(lines.reduce((n, l) => n + Number(l.split(' ')[1]), 0), datas.length + 1, 'every block counted once')
  const rows: Array<{ name: string; path: string; token?: string; status: number }> = [
    { name: 'no token → 401', path: `/mounts/${uuid}/digests`, status: 401 },
    { name: 'non-admin token → 403', path: `/mounts/${uuid}/digests`, token: USER, status: 403 },
    { name: 'unknown mount → 404', path: '/mounts/zzzzz-nyw5e-nosuchmount0000/digests', token: ADMIN_TOKEN, status: 404 },
  ]
  for (const row of rows) t.equal((await call(url, 'GET', row.path, row.token ? { token: row.token } : {})).status, row.status, row.name)
})

t.test('TOUCH, DELETE and untrash', async (t) => {
  const { url, clock, cluster } = await setup(t, { cluster: { blobTrashLifetime: '1h' } })
  await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })
  const mtimeOf = async (): Promise<string | undefined> =>
    (await call(url, 'GET', '/index', { token: ADMIN_TOKEN })).text.split('\n')[0]?.split(' ')[1]
  const before = await mtimeOf()
  clock.now += 1000
  const touch = await raw(url, [`TOUCH /${FOO_HASH}+3 HTTP/1.1\r\nHost: x\r\n`, `Authorization: Bearer ${ADMIN_TOKEN}\r\nX-Request-Id: touch-1\r\n\r\n`])
  t.equal(touch.status, 200, 'TOUCH is served although Node does not know the method (head split over two chunks)')
  t.match(touch.head, /X-Request-Id: touch-1/)
  t.not(await mtimeOf(), before, 'mtime moved')
  t.equal((await raw(url, `TOUCH /${md5('nope')} HTTP/1.1\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n\r\n`)).status, 404, 'TOUCH absent → 404')
  t.equal((await raw(url, `TOUCH /${FOO_HASH} HTTP/1.1\r\n\r\n`)).status, 401, 'TOUCH without token → 401')
  t.equal((await raw(url, `TOUCH /${FOO_HASH} HTTP/1.1\r\nAuthorization: Bearer ${USER}\r\n\r\n`)).status, 403, 'TOUCH non-admin → 403')

  t.equal((await call(url, 'DELETE', `/${FOO_HASH}`, { token: USER })).status, 403, 'DELETE needs admin')
  t.equal((await call(url, 'DELETE', `/${FOO_HASH}`, { token: ADMIN_TOKEN })).status, 200, 'a young block: 200 but kept')
  t.match((await call(url, 'GET', '/index', { token: ADMIN_TOKEN })).text, FOO_HASH, 'still listed')
  clock.now += 3601 * 1000
  t.equal((await call(url, 'DELETE', `/${FOO_HASH}`, { token: ADMIN_TOKEN })).status, 200, 'an old block is trashed')
  t.equal((await call(url, 'GET', '/index', { token: ADMIN_TOKEN })).text, '\n', 'trash hides it from the index')
  t.equal((await call(url, 'HEAD', `/${FOO_HASH}`, { token: ADMIN_TOKEN })).status, 400, 'HEAD without signature is 400 while signing is on')
  t.equal((await call(url, 'DELETE', `/${FOO_HASH}`, { token: ADMIN_TOKEN })).status, 404, 'DELETE absent → 404')
  t.equal((await call(url, 'PUT', `/untrash/${FOO_HASH}`, { token: ADMIN_TOKEN })).status, 200, 'untrash restores it')
  t.match((await call(url, 'GET', '/index', { token: ADMIN_TOKEN })).text, FOO_HASH)
  t.equal((await call(url, 'PUT', `/untrash/${FOO_HASH}`, { token: ADMIN_TOKEN })).status, 404, 'nothing trashed any more → 404')

  t.test('the emptier deletes trash after its lifetime, never a fresh copy', async (t) => {
    clock.now += 3601 * 1000
    t.equal((await call(url, 'DELETE', `/${FOO_HASH}`, { token: ADMIN_TOKEN })).status, 200)
    const ks = cluster.keepstores[0]!
    t.equal(await ks.emptier.runOnce(), 0, 'lifetime not over yet')
    await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO }) // a fresh live copy
    clock.now += 3601 * 1000
    t.equal(await ks.emptier.runOnce(), 1, 'the trashed copy is deleted')
    t.match((await call(url, 'GET', '/index', { token: ADMIN_TOKEN })).text, FOO_HASH, 'the fresh copy stays')
    t.equal((await call(url, 'PUT', `/untrash/${FOO_HASH}`, { token: ADMIN_TOKEN })).status, 404)
  })
})

t.test('DELETE with blobTrash off → 405', async (t) => {
  const { url } = await setup(t, { cluster: { blobTrash: false } })
  await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })
  t.equal((await call(url, 'DELETE', `/${FOO_HASH}`, { token: ADMIN_TOKEN })).status, 405)
})

t.test('CORS, request ids, OPTIONS, unknown routes', async (t) => {
  const { url } = await setup(t)
  const opt = await call(url, 'OPTIONS', `/${FOO_HASH}`)
  t.equal(opt.status, 200)
  t.equal(opt.headers['access-control-allow-origin'], '*')
  t.equal(opt.headers['access-control-allow-methods'], 'GET, HEAD, PUT, OPTIONS')
  t.match(opt.headers['access-control-allow-headers'], /X-Keep-Storage-Classes/)
  t.match(opt.headers['access-control-expose-headers'], /X-Keep-Replicas-Stored/)
  const echoed = await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO, headers: { 'x-request-id': 'abc-123' } })
  t.equal(echoed.headers['x-request-id'], 'abc-123', 'echoed')
  const made = await call(url, 'GET', '/nope/nope')
  t.match(made.headers['x-request-id'], /^req-[0-9a-f]{20}$/, 'generated')
  t.equal(made.headers['access-control-allow-origin'], '*', 'errors carry CORS too')
  const rows: Array<{ method: string; path: string }> = [
    { method: 'GET', path: '/nope/nope' },
    { method: 'POST', path: `/${FOO_HASH}` },
    { method: 'PATCH', path: '/index' },
    { method: 'DELETE', path: '/index/abc/def' },
  ]
  for (const r of rows) {
    const res = await call(url, r.method, r.path)
    t.equal(res.status, 400, `${r.method} ${r.path} → 400`)
    t.equal(res.text, 'Bad Request\n')
  }
})

t.test('health, metrics and status', async (t) => {
  const { url } = await setup(t)
  t.equal((await call(url, 'GET', '/_health/ping')).status, 401)
  t.equal((await call(url, 'GET', '/_health/ping', { token: ADMIN_TOKEN })).status, 403)
  const ok = await call(url, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN })
  t.same(JSON.parse(ok.text), { health: 'OK' })
  await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })
  const metrics = await call(url, 'GET', '/metrics', { token: MANAGEMENT_TOKEN })
  t.equal(metrics.status, 200)
  t.match(metrics.text, /keepstore_requests_total\{route="put_block",method="PUT",status="200"\} 1/)
  t.match(metrics.text, /keepstore_bytes_in_total 3/)
  t.match(metrics.text, /keepstore_volume_free_bytes/)
  t.match(metrics.text, /keepstore_worklist_items\{list="pull",state="done"\} 0/)
  t.match(metrics.text, /arvados_keepstore_pull_queue_pending_entries 0/)
  const status = await call(url, 'GET', '/status', { token: ADMIN_TOKEN })
  const body = JSON.parse(status.text) as { uuid: string; volumes: Array<{ state: string }>; pull: { queued: number } }
  t.equal(body.uuid, 'zzzzz-bi6l4-000000000000000')
  t.equal(body.volumes[0]?.state, 'ok')
  t.equal(body.pull.queued, 0)
})

t.test('health without a managementToken → 404 disabled', async (t) => {
  const { url } = await setup(t, { cluster: { managementToken: undefined } })
  const res = await call(url, 'GET', '/_health/ping', { token: MANAGEMENT_TOKEN })
  t.equal(res.status, 404)
  t.equal(res.text, 'disabled\n')
})

t.test('DELETE at the TTL boundary: a copy exactly TTL old is not older than the TTL and stays; 1 ms more and it goes', async (t) => {
  const { url, clock } = await setup(t)
  t.equal((await call(url, 'PUT', `/${FOO_HASH}`, { body: FOO })).status, 200) // mtime = T0
  const listed = async (): Promise<boolean> => (await call(url, 'GET', '/index', { token: ADMIN_TOKEN })).text.includes(FOO_HASH)
  clock.now = T0 + 3600 * 1000
  t.equal((await call(url, 'DELETE', `/${FOO_HASH}+3`, { token: ADMIN_TOKEN })).status, 200, 'a younger-or-equal copy: still 200')
  t.ok(await listed(), 'exactly TTL old: kept, as the trash list keeps it')
  clock.now = T0 + 3600 * 1000 + 1
  t.equal((await call(url, 'DELETE', `/${FOO_HASH}+3`, { token: ADMIN_TOKEN })).status, 200)
  t.notOk(await listed(), 'older than the TTL: trashed')
})
