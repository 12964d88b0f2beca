import t from 'tap'
import { createHash } from 'node:crypto'
import { startCluster, call, ADMIN_TOKEN } from '../../helpers/cluster.js'
import { KeepError } from '../../../shared/errors.js'
import type { Volume } from '../../../keepstore/volumes/volume.js'
import type { Keepstore } from '../../../keepstore/keepstore.js'

const md5 = (b: string): string => createHash('md5').update(b).digest('hex')
const FOO = 'foo'
const FOO_HASH = md5(FOO)

interface PutReply {
  status: number
  replicas: string | undefined
  /** X-Keep-Storage-Classes-Confirmed as a map (Keep's order is random; ours is sorted). */
  confirmed: Record<string, number>
}

async function put(url: string, data: string, classes?: string): Promise<PutReply> {
  const res = await call(url, 'PUT', `/${md5(data)}`, { body: data, ...(classes !== undefined ? { headers: { 'x-keep-storage-classes': classes } } : {}) })
  const header = res.headers['x-keep-storage-classes-confirmed'] ?? ''
  const confirmed = Object.fromEntries(header.split(', ').filter(Boolean).map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])]))
  return { status: res.status, replicas: res.headers['x-keep-replicas-stored'], confirmed }
}

/** Bytes whose rendezvous order of this keepstore's mounts starts with `uuid`. */
function dataFirstOn(ks: Keepstore, uuid: string): string {
  for (let i = 0; ; i++) if (ks.orderedMounts(md5(`block ${i}`))[0]!.uuid === uuid) return `block ${i}`
}

/** Which volumes list the block (per-mount index). */
async function holders(url: string, uuids: string[], hash: string): Promise<string[]> {
  const out: string[] = []
  for (const uuid of uuids) if ((await call(url, 'GET', `/mounts/${uuid}/blocks/${hash}`, { token: ADMIN_TOKEN })).text.includes(hash)) out.push(uuid)
  return out
}

t.test('PUT with X-Keep-Storage-Classes, as Keep (TestPutStorageClasses): each requested class this server has is written, only those are confirmed; 507 only when none can be', async (t) => {
  // As Keep's test: "default", a writable {special, extra}, and a read-only {readonly}.
  const cluster = await startCluster(t, {
    volumes: [{ driver: 'memory' }, { driver: 'memory', storageClasses: ['special', 'extra'] }, { driver: 'memory', readOnly: true, storageClasses: ['readonly'] }],
  })
  const url = cluster.urls[0]!
  const ks = cluster.keepstores[0]!.keepstore
  const uuids = cluster.config.keepstores[0]!.volumes.map((v) => v.uuid)
  // As in Keep's test, the block's rendezvous order starts with the "default" volume: a PUT without classes lands there.
  const data = dataFirstOn(ks, uuids[0]!)
  const rows: Array<{ ask: string | undefined; replicas: number; classes: Record<string, number> }> = [
    { ask: undefined, replicas: 1, classes: { default: 1 } },
    { ask: '', replicas: 1, classes: { default: 1 } },
    { ask: 'default', replicas: 1, classes: { default: 1 } },
    { ask: 'default, default', replicas: 1, classes: { default: 1 } },
    { ask: 'special', replicas: 1, classes: { extra: 1, special: 1 } },
    { ask: 'special, readonly', replicas: 1, classes: { extra: 1, special: 1 } },
    { ask: 'special, nonexistent', replicas: 1, classes: { extra: 1, special: 1 } },
    { ask: 'extra, special', replicas: 1, classes: { extra: 1, special: 1 } },
    { ask: 'default, special', replicas: 2, classes: { default: 1, extra: 1, special: 1 } },
    { ask: ' , special , ', replicas: 1, classes: { extra: 1, special: 1 } },
    // The case of issue 10: a class this server lacks is left to the next server.
    { ask: 'default, archive', replicas: 1, classes: { default: 1 } },
  ]
  for (const row of rows) {
    const reply = await put(url, data, row.ask)
    t.equal(reply.status, 200, `${JSON.stringify(row.ask)} → 200`)
    t.equal(reply.replicas, String(row.replicas), `${JSON.stringify(row.ask)}: X-Keep-Replicas-Stored ${row.replicas}`)
    t.same(reply.confirmed, row.classes, `${JSON.stringify(row.ask)}: confirmed ${JSON.stringify(row.classes)}`)
  }
  for (const ask of ['doesnotexist', 'doesnotexist, readonly', 'readonly']) {
    const res = await call(url, 'PUT', `/${md5(data)}`, { body: data, headers: { 'x-keep-storage-classes': ask } })
    t.equal(res.status, 507, `${ask}: no writable volume has any of them → 507`)
    t.match(res.text, /^[^\n]+\n$/, `${ask}: a one-line reason`)
  }
  t.same(await holders(url, uuids, md5(data)), uuids.slice(0, 2), 'nothing ever reached the read-only volume')
})

t.test('PUT, as Keep (TestBlockWrite_MultipleStorageClasses): one mount with several requested classes is written once and confirms each with its replication', async (t) => {
  const cluster = await startCluster(t, {
    volumes: [{ driver: 'memory', storageClasses: ['class1'] }, { driver: 'memory', storageClasses: ['class1', 'class2'], replication: 2 }, { driver: 'memory', storageClasses: ['class2'] }],
  })
  const url = cluster.urls[0]!
  const ks = cluster.keepstores[0]!.keepstore
  const uuids = cluster.config.keepstores[0]!.volumes.map((v) => v.uuid)
  const shared = dataFirstOn(ks, uuids[1]!)
  const reply = await put(url, shared, 'class1, class2')
  t.equal(reply.status, 200)
  t.same(reply.confirmed, { class1: 2, class2: 2 }, 'the shared mount first: written once, both classes confirmed with replication 2')
  t.equal(reply.replicas, '2', 'X-Keep-Replicas-Stored counts replicas written, not classes')
  t.same(await holders(url, uuids, md5(shared)), [uuids[1]])

  const apart = dataFirstOn(ks, uuids[0]!)
  const second = await put(url, apart, 'class1, class2')
  const written = await holders(url, uuids, md5(apart))
  t.equal(written.length, 2, 'the class1-only mount first: a second mount for class2')
  t.notOk(written.includes(uuids[2]!) && written.includes(uuids[1]!), 'one mount per missing class, no more')
  const replicas = written.reduce((n, u) => n + (u === uuids[1] ? 2 : 1), 0)
  t.equal(second.replicas, String(replicas))
  t.equal(second.confirmed.class2, written.includes(uuids[1]!) ? 2 : 1)
})

/** Replaces a volume's write with one that fails before reading the body (as a failed open of the temp file does). */
function failWrites(volume: Volume, code: 'KEEP_IO' | 'KEEP_FULL'): () => number {
  let calls = 0
  volume.write = async () => {
    calls++
    throw new KeepError(code, `volume ${volume.uuid}: open failed: ${code === 'KEEP_FULL' ? 'ENOSPC' : 'EIO'}`)
  }
  return () => calls
}

t.test('PUT status codes, as Keep (TestBlockWrite_NoWritableVolumes → 507): no writable volume → 507; every writable one full → 507; every one failing → 500', async (t) => {
  await t.test('only read-only volumes → 507 (Keep: errFull)', async (t) => {
    const cluster = await startCluster(t, { volumes: [{ driver: 'memory', readOnly: true }] })
    t.equal((await call(cluster.urls[0]!, 'PUT', `/${FOO_HASH}`, { body: FOO })).status, 507)
  })
  await t.test('every writable volume full → 507', async (t) => {
    const cluster = await startCluster(t, { volumes: [{ driver: 'memory' }, { driver: 'memory' }] })
    const calls = cluster.keepstores[0]!.keepstore.mounts.map((m) => failWrites(m.volume, 'KEEP_FULL'))
    t.equal((await call(cluster.urls[0]!, 'PUT', `/${FOO_HASH}`, { body: FOO })).status, 507)
    t.same(calls.map((c) => c()), [1, 1], 'each volume was tried once')
  })
  await t.test('one failing with I/O errors, the other full → 500 (not every one is full)', async (t) => {
    const cluster = await startCluster(t, { volumes: [{ driver: 'memory' }, { driver: 'memory' }] })
    const [a, b] = cluster.keepstores[0]!.keepstore.mounts
    failWrites(a!.volume, 'KEEP_IO')
    failWrites(b!.volume, 'KEEP_FULL')
    const res = await call(cluster.urls[0]!, 'PUT', `/${FOO_HASH}`, { body: FOO })
    t.equal(res.status, 500)
    t.match(res.text, /^[^\n]+\n$/, 'a one-line reason')
  })
})

t.test('PUT, as Keep: a volume that fails is passed over for the next writable one in rendezvous order', async (t) => {
  const cluster = await startCluster(t, { volumes: [{ driver: 'memory' }, { driver: 'memory' }] })
  const url = cluster.urls[0]!
  const ks = cluster.keepstores[0]!.keepstore
  const first = ks.orderedMounts(FOO_HASH)[0]!
  const calls = failWrites(first.volume, 'KEEP_IO')
  const reply = await put(url, FOO)
  t.equal(reply.status, 200, 'the next volume took it')
  t.equal(calls(), 1, 'the first in rendezvous order was tried first')
  const other = ks.mounts.find((m) => m !== first)!
  t.same(await holders(url, [first.uuid, other.uuid], FOO_HASH), [other.uuid])
})
