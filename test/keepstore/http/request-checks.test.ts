import t from 'tap'
import { rawStatus } from '../../helpers/block-client.js'
import { startCluster, call, ADMIN_TOKEN } from '../../helpers/cluster.js'


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
