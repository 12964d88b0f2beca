import t from 'tap'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { withoutPaths } from '../../../keepstore/http/middleware.js'
import { SIGNING_KEY, call } from '../../helpers/cluster.js'
import { fault, serveWithFaults } from '../../helpers/fault-app.js'
import { createSigner } from '../../../shared/signer.js'

const md5 = (b: string): string => createHash('md5').update(b).digest('hex')
const TOKEN = 'user-token-abcdefghijklmnopqrstuvwxyz'
const signer = createSigner({ key: SIGNING_KEY, ttlSeconds: 336 * 3600, maxClockSkewSeconds: 600 })

const rows = [
  { name: 'ENOSPC while writing → 507', op: 'write', code: 'ENOSPC', status: 507 },
  { name: 'EIO while writing → 500', op: 'write', code: 'EIO', status: 500 },
  { name: 'EROFS while creating the temp file → 500', op: 'open', code: 'EROFS', status: 500 },
]
for (const row of rows) {
  t.test(`PUT failing with ${row.name}: the body is a one-line reason without a path, the log keeps the path`, async (t) => {
    let armed = false
    const { url, root, logs } = await serveWithFaults(t, (op) => {
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
  const { url, root, logs } = await serveWithFaults(t, (op) => {
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
