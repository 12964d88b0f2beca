import t, { type Test } from 'tap'
import http from 'node:http'
import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { createApp } from '../../../keepstore/http/app.js'
import { withoutPaths } from '../../../keepstore/http/middleware.js'
import { Keepstore } from '../../../keepstore/keepstore.js'
import { KeepstoreMetrics } from '../../../keepstore/metrics.js'
import { Mount } from '../../../keepstore/mount.js'
import { type FaultHook, createDirectoryVolume } from '../../../keepstore/volumes/directory-volume.js'
import { SIGNING_KEY, call, captureLogger, clusterConfig } from '../../helpers/cluster.js'
import { createSigner } from '../../../shared/signer.js'

const md5 = (b: string): string => createHash('md5').update(b).digest('hex')
const UUID = 'zzzzz-nyw5e-000000000000000'
const TOKEN = 'user-token-abcdefghijklmnopqrstuvwxyz'
const fault = (code: string): Error => Object.assign(new Error(`simulated ${code}`), { code })
const signer = createSigner({ key: SIGNING_KEY, ttlSeconds: 336 * 3600, maxClockSkewSeconds: 600 })

/** A keepstore app over one directory volume whose file-system steps `faults` may fail. */
async function serve(t: Test, faults: FaultHook): Promise<{ url: string; root: string; logs: object[] }> {
  const dir = t.testdir({ disk: {} })
  const root = path.join(dir, 'disk')
  const logs: object[] = []
  const logger = captureLogger(logs)
  const volume = createDirectoryVolume({ uuid: UUID, root, faults })
  await volume.open()
  const mount = new Mount({ volume, replication: 1, storageClasses: ['default'], priority: 0, readOnly: false, minFreeSpace: 0 })
  const { cluster } = clusterConfig(dir, [1])
  const keepstore = new Keepstore({ uuid: 'zzzzz-bi6l4-000000000000000', mounts: [mount], cluster, logger })
  const metrics = new KeepstoreMetrics({ mounts: () => keepstore.mounts })
  const app = createApp({ keepstore, worklists: undefined, metrics, logger, version: 'test' }, { maxConcurrentRequests: 8 })
  const server = http.createServer(app.callback())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, root, logs }
}

const rows = [
  { name: 'ENOSPC while writing → 507', op: 'write', code: 'ENOSPC', status: 507 },
  { name: 'EIO while writing → 500', op: 'write', code: 'EIO', status: 500 },
  { name: 'EROFS while creating the temp file → 500', op: 'open', code: 'EROFS', status: 500 },
]
for (const row of rows) {
  t.test(`PUT failing with ${row.name}: the body is a one-line reason without a path, the log keeps the path`, async (t) => {
    let armed = false
    const { url, root, logs } = await serve(t, (op) => {
      if (armed && op === row.op) throw fault(row.code)
    })
    armed = true
    const res = await call(url, 'PUT', `/${md5(row.code)}`, { body: row.code })
    t.equal(res.status, row.status, row.name)
    t.match(res.text, /^[^\n]+\n$/, 'one line')
    t.notOk(res.text.includes(root), 'no volume root in the body')
    t.notOk(res.text.includes('/'), `no path at all: ${res.text.trim()}`)
    t.ok(JSON.stringify(logs).includes(root), 'the log still names the file')
  })
}

t.test('a directory in a block file place (EISDIR) and EIO on read: bodies without a path', async (t) => {
  let failing: { op: string; code: string } | undefined
  const { url, root, logs } = await serve(t, (op) => {
    if (failing && op === failing.op) throw fault(failing.code)
  })
  // EISDIR: a directory planted where the block file goes; the PUT cannot replace it.
  const data = 'a block with a directory in its place'
  mkdirSync(path.join(root, md5(data).slice(0, 3), md5(data)), { recursive: true })
  const put = await call(url, 'PUT', `/${md5(data)}`, { body: data })
  t.equal(put.status, 500, 'a directory in the block file place → 500')
  t.notOk(put.text.includes('/'), `EISDIR: no path in the body: ${put.text.trim()}`)
  // EIO while reading.
  const stored = 'stored, then unreadable'
  t.equal((await call(url, 'PUT', `/${md5(stored)}`, { body: stored })).status, 200)
  failing = { op: 'open', code: 'EIO' }
  const get = await call(url, 'GET', `/${signer.sign(`${md5(stored)}+${stored.length}`, TOKEN)}`, { token: TOKEN })
  failing = undefined
  t.equal(get.status, 500, 'EIO while opening a block for GET → 500')
  t.notOk(get.text.includes('/'), `EIO on read: no path in the body: ${get.text.trim()}`)
  const logged = JSON.stringify(logs)
  t.ok(logged.includes(root), 'the log still names the file')
})

t.test('withoutPaths: an absolute path from a library message becomes <path>, URLs stay', async (t) => {
  t.equal(withoutPaths("ENOSPC: no space left on device, open '/var/lib/keep/x'"), "ENOSPC: no space left on device, open '<path>'")
  t.equal(withoutPaths('IO error: /state/000005.log'), 'IO error: <path>')
  t.equal(withoutPaths('http://127.0.0.1:25107/abc: 404 block not found'), 'http://127.0.0.1:25107/abc: 404 block not found')
  t.equal(withoutPaths('volume zzzzz-nyw5e-000000000000000: write failed: ENOSPC'), 'volume zzzzz-nyw5e-000000000000000: write failed: ENOSPC')
})
