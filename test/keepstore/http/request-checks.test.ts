import t from 'tap'
import { request } from 'undici'
import { rawStatus } from '../../helpers/block-client.js'
import { startCluster, call, ADMIN_TOKEN, SIGNING_KEY } from '../../helpers/cluster.js'
import { createSigner } from '../../../shared/signer.js'

const FOO_HASH = 'acbd18db4cc2f85cedef654fccc4a4d8'
const USER = 'user-token-abcdefghijklmnopqrstuvwxyz'
const signer = createSigner({ key: SIGNING_KEY, ttlSeconds: 336 * 3600, maxClockSkewSeconds: 600 })

t.test('bad percent-encoding anywhere in the path → 400, TOUCH included', async (t) => {
  const cluster = await startCluster(t)
  const url = cluster.urls[0]!
  const port = Number(new URL(url).port)
  const head = (method: string, p: string): string => `${method} ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nConnection: close\r\n\r\n`
  t.equal(await rawStatus(port, head('TOUCH', '/%zz')), 400, 'TOUCH /%zz')
  t.equal(await rawStatus(port, head('TOUCH', '/acbd18db4cc2f85cedef654fccc4a4d8+3%')), 400, 'TOUCH with a lone %')
  const rows: Array<[string, string]> = [
    ['GET', '/%zz'],
    ['HEAD', '/%zz'],
    ['PUT', '/%zz'],
    ['DELETE', '/%zz'],
    ['PUT', '/untrash/%zz'],
    ['GET', '/index/%zz'],
    ['GET', '/mounts/%zz/blocks'],
    ['GET', '/mounts/zzzzz-nyw5e-000000000000000/blocks/%zz'],
    ['GET', '/mounts/%E0%A4%A/blocks'],
  ]
  for (const [method, p] of rows) t.equal((await call(url, method, p, { token: ADMIN_TOKEN, ...(method === 'PUT' ? { body: '' } : {}) })).status, 400, `${method} ${p}`)
})

t.test('index prefix: given twice, as an array, or in both path and query (differing) → 400', async (t) => {
  const cluster = await startCluster(t)
  const url = cluster.urls[0]!
  const mount = cluster.config.keepstores[0]!.volumes[0]!.uuid
  const bad = [
    '/index?prefix=5e&prefix=zz',
    '/index?prefix=5e&prefix=5e',
    '/index?prefix[]=a',
    '/index?prefix[0]=a',
    '/index/5e?prefix=5f',
    '/index/5e?prefix=',
    `/mounts/${mount}/blocks?prefix=5e&prefix=zz`,
    `/mounts/${mount}/blocks/5e?prefix=5f`,
  ]
  for (const p of bad) t.equal((await call(url, 'GET', p, { token: ADMIN_TOKEN })).status, 400, p)
  const good = ['/index?prefix=5e', '/index/5e', '/index/5e?prefix=5e', '/index?other=1', `/mounts/${mount}/blocks?prefix=5e`]
  for (const p of good) t.equal((await call(url, 'GET', p, { token: ADMIN_TOKEN })).status, 200, p)
})

t.test('as Keep\'s router: GET and HEAD //<locator> are served as /<locator> (TestBlockRead_DoubleSlash); PUT, DELETE, TOUCH and admin paths with // → 400 (TestBadRequest)', async (t) => {
  const cluster = await startCluster(t)
  const url = cluster.urls[0]!
  const port = Number(new URL(url).port)
  t.equal((await call(url, 'PUT', `/${FOO_HASH}`, { body: 'foo' })).status, 200)
  const signed = signer.sign(`${FOO_HASH}+3`, USER)
  // undici keeps a path given in the URL string as is (new URL(path, base) would take //x for a host).
  const get = await request(`${url}//${signed}`, { headers: { authorization: `Bearer ${USER}` } })
  t.equal(get.statusCode, 200, 'GET //<locator> → 200')
  t.equal(await get.body.text(), 'foo', 'with the block')
  t.equal(get.headers['access-control-allow-origin'], '*', 'and the CORS headers')
  const head = await request(`${url}//${signed}`, { method: 'HEAD', headers: { authorization: `Bearer ${USER}` } })
  await head.body.dump()
  t.equal(head.statusCode, 200, 'HEAD //<locator> → 200')
  t.equal(head.headers['content-length'], '3')
  const bad = (method: string, p: string): string => `${method} ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nfoo`
  for (const [method, p] of [['PUT', `//${FOO_HASH}`], ['DELETE', `//${FOO_HASH}`], ['TOUCH', `//${FOO_HASH}`], ['GET', '//index'], ['GET', '//mounts'], ['GET', `//${signed}/x`]] as const) {
    t.equal(await rawStatus(port, bad(method, p)), 400, `${method} ${p} → 400`)
  }
})

t.test('UTF-8 hints such as +👶🦈, as Keep accepts them (TestGetLocatorInfo), percent-encoded in the URL: PUT, GET and HEAD answer 200', async (t) => {
  const cluster = await startCluster(t)
  const url = cluster.urls[0]!
  const put = await call(url, 'PUT', `/${encodeURIComponent(`${FOO_HASH}+3+👶🦈`)}`, { body: 'foo' })
  t.equal(put.status, 200, 'PUT')
  t.match(put.text, new RegExp(`^${FOO_HASH}\\+3\\n$`), 'the reply names the block without the hint')
  const signed = signer.sign(`${FOO_HASH}+3+👶🦈+Rzzzzz-abcdef`, USER)
  t.match(signed, /\+👶🦈\+Rzzzzz-abcdef\+A/, 'the signer keeps the hints')
  const get = await call(url, 'GET', `/${encodeURIComponent(signed)}`, { token: USER })
  t.equal(get.status, 200, 'GET')
  t.equal(get.text, 'foo')
  t.equal((await call(url, 'HEAD', `/${encodeURIComponent(signed)}`, { token: USER })).status, 200, 'HEAD')
  t.equal((await call(url, 'PUT', `/${FOO_HASH}+3+${encodeURIComponent('👶 🦈')}`, { body: 'foo' })).status, 400, 'a hint with a space is still refused')
})
