import t from 'tap'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises'
import { startCluster, call, ADMIN_TOKEN, captureLogger } from '../helpers/cluster.js'
import { createTrashHandler } from '../../keepstore/trash-worker.js'
import { Keepstore } from '../../keepstore/keepstore.js'
import { Mount } from '../../keepstore/mount.js'
import { createMemoryVolume } from '../../keepstore/volumes/memory-volume.js'
import { silentLogger } from '../../shared/logger.js'
import type { ClusterConfig, VolumeConfig } from '../../shared/config.js'

const md5 = (b: string): string => createHash('md5').update(b).digest('hex')
const HOUR = 3600 * 1000
const T0 = 1_800_000_000_000

interface Row {
  name: string
  /** ms after T0 when the trash list is processed */
  at: number
  /** block_mtime relative to the stored one, in ns */
  mtimeDelta: bigint
  mount: 'own' | 'none' | 'other'
  blobTrash?: boolean
  trashed: boolean
  outcome: 'done' | 'skipped'
}

const rows: Row[] = [
  { name: 'old, exact mtime, its mount → trashed', at: 2 * HOUR, mtimeDelta: 0n, mount: 'own', trashed: true, outcome: 'done' },
  { name: 'old, exact mtime, no mount → every trashable mount', at: 2 * HOUR, mtimeDelta: 0n, mount: 'none', trashed: true, outcome: 'done' },
  { name: '(a) younger than the TTL → kept', at: HOUR / 2, mtimeDelta: 0n, mount: 'own', trashed: false, outcome: 'skipped' },
  { name: '(b) mtime one nanosecond off → kept', at: 2 * HOUR, mtimeDelta: 1n, mount: 'own', trashed: false, outcome: 'skipped' },
  { name: '(b) mtime one nanosecond earlier → kept', at: 2 * HOUR, mtimeDelta: -1n, mount: 'own', trashed: false, outcome: 'skipped' },
  { name: 'a mount that does not hold it → kept', at: 2 * HOUR, mtimeDelta: 0n, mount: 'other', trashed: false, outcome: 'skipped' },
  { name: 'blobTrash off → accepted, skipped', at: 2 * HOUR, mtimeDelta: 0n, mount: 'own', blobTrash: false, trashed: false, outcome: 'skipped' },
]

t.test('trash list guards (a) age, (b) exact mtime, per mount; blobTrash off', async (t) => {
  for (const row of rows) {
    await t.test(row.name, async (t) => {
      const clock = { now: T0 }
      const cluster = await startCluster(t, {
        now: () => clock.now,
        volumes: [{ driver: 'memory' }, { driver: 'memory' }],
        cluster: { blobSigningTTL: '1h', blobTrashLifetime: '1h', ...(row.blobTrash === false ? { blobTrash: false } : {}) },
      })
      const url = cluster.urls[0]!
      const data = `block for ${row.name}`
      const hash = md5(data)
      const mounts = cluster.config.keepstores[0]!.volumes.map((v) => v.uuid)
      t.equal((await call(url, 'PUT', `/${hash}`, { body: data })).status, 200)
      const line = (await call(url, 'GET', '/index', { token: ADMIN_TOKEN })).text.split('\n')[0]!
      const stored = BigInt(line.split(' ')[1]!)
      const own = (await Promise.all(cluster.keepstores[0]!.keepstore.mounts.map(async (m) => ((await m.volume.stat(hash).then(() => true, () => false)) ? m.uuid : undefined)))).find(Boolean)!
      const other = mounts.find((m) => m !== own)!
      clock.now = T0 + row.at
      const item: Record<string, unknown> = { locator: `${hash}+${data.length}`, block_mtime: `${stored + row.mtimeDelta}` }
      if (row.mount === 'own') item.mount_uuid = own
      if (row.mount === 'other') item.mount_uuid = other
      // block_mtime as a bare JSON number with all 19 digits, as the datamanager sends it.
      const body = JSON.stringify([item]).replace(/"block_mtime":"(\d+)"/, '"block_mtime":$1')
      t.equal((await call(url, 'PUT', '/trash', { token: ADMIN_TOKEN, body })).status, 200)
      await cluster.keepstores[0]!.worklists.trash.idle()
      const listed = (await call(url, 'GET', '/index', { token: ADMIN_TOKEN })).text.includes(hash)
      t.equal(!listed, row.trashed, row.trashed ? 'trashed' : 'still there')
      const status = JSON.parse((await call(url, 'GET', '/trash', { token: ADMIN_TOKEN })).text) as Record<string, number>
      t.equal(status[row.outcome], 1, `counted as ${row.outcome}`)
    })
  }
})

t.test('trash guard (c): a touch between the check and the trash wins', async (t) => {
  let now = T0
  const volume = createMemoryVolume({ uuid: 'zzzzz-nyw5e-000000000000000', now: () => BigInt(now) * 1_000_000n })
  const mount = new Mount({ volume, replication: 1, storageClasses: ['default'], priority: 0, readOnly: false, minFreeSpace: 0 })
  const cluster = { blobTrash: true, blobSigningTTLSeconds: 3600, blobTrashLifetimeMs: HOUR } as ClusterConfig
  const keepstore = new Keepstore({ uuid: 'ks', mounts: [mount], cluster, logger: silentLogger(), now: () => now })
  const data = 'raced'
  const hash = md5(data)
  const written = await volume.write(hash, Readable.from([Buffer.from(data)]))
  now = T0 + 2 * HOUR
  // The volume's trash runs after someone touched the block: the lock re-check must refuse.
  const realTrash = volume.trash.bind(volume)
  volume.trash = async (h, options) => {
    await volume.touch(h)
    return realTrash(h, options)
  }
  const handle = createTrashHandler({ keepstore, logger: silentLogger() })
  t.equal(await handle({ locator: `${hash}+5`, block_mtime: written.mtime }), 'skipped')
  t.ok(await volume.stat(hash), 'the touched block is still live')
})

t.test('trash: the accepted list (digest and counters) survives a restart', async (t) => {
  const clock = { now: T0 }
  const cluster = await startCluster(t, { now: () => clock.now, volumes: [{ driver: 'directory' }], cluster: { blobSigningTTL: '1h' }, keepstore: { trashConcurrency: 1 } })
  const url = cluster.urls[0]!
  const body = '[{"locator":"acbd18db4cc2f85cedef654fccc4a4d8+3","block_mtime":1707249451308502672}]'
  t.equal((await call(url, 'PUT', '/trash', { token: ADMIN_TOKEN, body })).status, 200)
  const got = (await call(url, 'GET', '/trash', { token: ADMIN_TOKEN })).text
  t.match(got, /"digest":"[0-9a-f]{64}"/)
  const restarted = await cluster.restart(0)
  const again = (await call(restarted.url, 'GET', '/trash', { token: ADMIN_TOKEN })).text
  t.match(again, /"digest":"[0-9a-f]{64}"/)
  t.equal(JSON.parse(again).digest, JSON.parse(got).digest, 'same list after restart')
})

/** A keepstore over memory volumes whose clocks the test sets (volume mtimes in ns, keepstore time in ms). */
function unitKeepstore(mounts: Array<{ uuid: string; readOnly?: boolean }>, clock: { nowMs: number; mtimeNs: bigint }) {
  const built = mounts.map((m) => {
    const volume = createMemoryVolume({ uuid: m.uuid, now: () => clock.mtimeNs })
    return new Mount({ volume, replication: 1, storageClasses: ['default'], priority: 0, readOnly: m.readOnly ?? false, minFreeSpace: 0 })
  })
  const cluster = { blobTrash: true, blobSigningTTLSeconds: 3600, blobTrashLifetimeMs: HOUR } as ClusterConfig
  const keepstore = new Keepstore({ uuid: 'ks', mounts: built, cluster, logger: silentLogger(), now: () => clock.nowMs })
  const logs: Array<{ msg?: string }> = []
  // Every volume.trash call is counted: the worker's own guards must stop an item before the volume is asked.
  const trashCalls: string[] = []
  for (const m of built) {
    const real = m.volume.trash.bind(m.volume)
    m.volume.trash = (h, o) => {
      trashCalls.push(m.uuid)
      return real(h, o)
    }
  }
  return { keepstore, mounts: built, logs, trashCalls, handle: createTrashHandler({ keepstore, logger: captureLogger(logs) }) }
}

const live = async (mount: Mount, hash: string): Promise<boolean> => mount.volume.stat(hash).then(() => true, () => false)

t.test('trash list, no mount named → every trashable mount: both writable copies go, the read-only one stays', async (t) => {
  const clock = { nowMs: T0, mtimeNs: BigInt(T0) * 1_000_000n }
  const { mounts, handle } = unitKeepstore([{ uuid: 'zzzzz-nyw5e-00000000000000a' }, { uuid: 'zzzzz-nyw5e-00000000000000b' }, { uuid: 'zzzzz-nyw5e-00000000000000c', readOnly: true }], clock)
  const data = 'on every mount'
  const hash = md5(data)
  for (const m of mounts) await m.volume.write(hash, Readable.from([Buffer.from(data)]))
  clock.nowMs = T0 + 2 * HOUR
  t.equal(await handle({ locator: `${hash}+${data.length}`, block_mtime: clock.mtimeNs }), 'done')
  t.same(await Promise.all(mounts.map((m) => live(m, hash))), [false, false, true], 'trashed on both writable mounts, kept on the read-only one')
})

t.test('trash list, as Keep ignores an item for a read-only mount without allowTrashWhenReadOnly: the item fails (KEEP_READ_ONLY), the copy stays', async (t) => {
  const clock = { nowMs: T0, mtimeNs: BigInt(T0) * 1_000_000n }
  const { mounts, handle, trashCalls } = unitKeepstore([{ uuid: 'zzzzz-nyw5e-00000000000000a', readOnly: true }], clock)
  const hash = md5('read only')
  await mounts[0]!.volume.write(hash, Readable.from([Buffer.from('read only')]))
  clock.nowMs = T0 + 2 * HOUR
  await t.rejects(handle({ locator: `${hash}+9`, block_mtime: clock.mtimeNs, mount_uuid: 'zzzzz-nyw5e-00000000000000a' }), { code: 'KEEP_READ_ONLY' })
  t.same(trashCalls, [], 'the volume was never asked')
  t.ok(await live(mounts[0]!, hash))
})

t.test('allowTrashWhenReadOnly, as Keep (TestBlockTrash, AllowTrash in /mounts): DELETE, trash lists, untrash and the emptier reach a read-only volume that allows it, never one that does not; writes stay refused', async (t) => {
  const clock = { now: Date.now() }
  const cluster = await startCluster(t, {
    now: () => clock.now,
    cluster: { blobSigningTTL: '1h', blobTrashLifetime: '1h' },
    volumes: [{ driver: 'directory' }, { driver: 'directory', readOnly: true }, { driver: 'directory', readOnly: true, allowTrashWhenReadOnly: true }],
  })
  const url = cluster.urls[0]!
  const [rw, ro, roTrash] = cluster.config.keepstores[0]!.volumes as [VolumeConfig, VolumeConfig, VolumeConfig]
  const mounts = JSON.parse((await call(url, 'GET', '/mounts', { token: ADMIN_TOKEN })).text) as Array<{ uuid: string; allow_write: boolean; allow_trash: boolean }>
  const flags = (uuid: string) => mounts.find((m) => m.uuid === uuid)
  t.match(flags(rw.uuid), { allow_write: true, allow_trash: true })
  t.match(flags(ro.uuid), { allow_write: false, allow_trash: false })
  t.match(flags(roTrash.uuid), { allow_write: false, allow_trash: true }, 'allow_trash as Keep reports AllowTrash')

  // Copies planted on every volume (a read-only one cannot be written through the keepstore), all with one mtime older than the TTL.
  const old = Math.floor(clock.now / 1000) - 2 * 3600
  const plant = async (data: string): Promise<string> => {
    const hash = md5(data)
    for (const v of [rw, ro, roTrash]) {
      const file = `${v.root}/${hash.slice(0, 3)}/${hash}`
      await mkdir(`${v.root}/${hash.slice(0, 3)}`, { recursive: true })
      await writeFile(file, data)
      await utimes(file, old, old)
    }
    return hash
  }
  const holders = async (hash: string): Promise<string[]> => {
    const out: string[] = []
    for (const v of [rw, ro, roTrash]) if ((await call(url, 'GET', `/mounts/${v.uuid}/blocks/${hash}`, { token: ADMIN_TOKEN })).text.includes(hash)) out.push(v.uuid)
    return out
  }
  const deleted = await plant('deleted by DELETE')
  const listed = await plant('trashed by a list')
  t.equal((await call(url, 'DELETE', `/${deleted}`, { token: ADMIN_TOKEN })).status, 200)
  t.same(await holders(deleted), [ro.uuid], 'DELETE trashed the writable copy and the allowTrashWhenReadOnly one, not the plain read-only one')
  t.equal((await call(url, 'DELETE', `/${deleted}`, { token: ADMIN_TOKEN })).status, 404, 'a copy left only where trash is not allowed counts as absent, as in Keep')

  const mtimes = (await call(url, 'GET', `/mounts/${roTrash.uuid}/blocks/${listed}`, { token: ADMIN_TOKEN })).text.split(' ')[1]!.trim()
  const list = (mount?: string): string => `[{"locator":"${listed}+${'trashed by a list'.length}","block_mtime":${mtimes}${mount ? `,"mount_uuid":"${mount}"` : ''}}]`
  const ks = cluster.keepstores[0]!
  t.equal((await call(url, 'PUT', '/trash', { token: ADMIN_TOKEN, body: list(ro.uuid) })).status, 200, 'an item for a plain read-only mount is accepted with its list')
  await ks.worklists.trash.idle()
  t.match(ks.worklists.trash.counts(), { failed: 1, done: 0 }, 'and fails')
  t.equal((await call(url, 'PUT', '/trash', { token: ADMIN_TOKEN, body: list(roTrash.uuid) })).status, 200)
  await ks.worklists.trash.idle()
  t.match(ks.worklists.trash.counts(), { done: 1, failed: 0 }, 'the allowTrashWhenReadOnly mount trashes it')
  t.same(await holders(listed), [rw.uuid, ro.uuid].sort())

  t.equal((await call(url, 'PUT', `/untrash/${listed}`, { token: ADMIN_TOKEN })).status, 200, 'untrash (ours) undoes it there')
  t.same(await holders(listed), [rw.uuid, ro.uuid, roTrash.uuid].sort())
  t.equal((await call(url, 'PUT', '/trash', { token: ADMIN_TOKEN, body: list() })).status, 200)
  await ks.worklists.trash.idle()
  t.same(await holders(listed), [ro.uuid], 'no mount named: every mount that allows trash')

  clock.now += 2 * HOUR
  t.equal(await ks.emptier.runOnce(), 4, 'the emptier deletes the trashed copies, the read-only one with allowTrashWhenReadOnly included')
  const trashLeft = async (root: string) => (await readdir(root, { recursive: true })).filter((n) => n.includes('.trash.'))
  t.same(await trashLeft(roTrash.root!), [], 'nothing trashed is left there')

  const fresh = 'a new block'
  t.equal((await call(url, 'PUT', `/${md5(fresh)}`, { body: fresh })).status, 200)
  t.same(await holders(md5(fresh)), [rw.uuid], 'writes still go only to the writable volume')
})

t.test('trash list at the TTL boundary, to the nanosecond: exactly TTL old stays, one nanosecond older goes', async (t) => {
  const nowMs = T0 + HOUR
  const cutoff = BigInt(T0) * 1_000_000n // now − TTL, in ns
  for (const [name, mtime, outcome] of [
    ['exactly as old as the TTL', cutoff, 'skipped'],
    ['one nanosecond younger', cutoff + 1n, 'skipped'],
    ['one nanosecond older than the TTL', cutoff - 1n, 'done'],
  ] as const) {
    const clock = { nowMs, mtimeNs: mtime }
    const { mounts, handle, trashCalls, logs } = unitKeepstore([{ uuid: 'zzzzz-nyw5e-00000000000000a' }], clock)
    const hash = md5(name)
    await mounts[0]!.volume.write(hash, Readable.from([Buffer.from(name)]))
    t.equal(await handle({ locator: `${hash}+${name.length}`, block_mtime: mtime }), outcome, `${name} → ${outcome}`)
    t.equal(await live(mounts[0]!, hash), outcome === 'skipped', `${name}: ${outcome === 'skipped' ? 'still live' : 'trashed'}`)
    t.equal(trashCalls.length, outcome === 'skipped' ? 0 : 1, `${name}: ${outcome === 'skipped' ? 'guard (a) stopped it before the volume was asked' : 'the volume trashed it'}`)
    if (outcome === 'skipped') t.ok(logs.some((l) => l.msg === 'trash item skipped: block is younger than blobSigningTTL'), `${name}: the skip is logged`)
  }
})

t.test('trash list: the volume-level re-check uses the same cutoff (a copy touched to exactly the cutoff stays)', async (t) => {
  const clock = { nowMs: T0 + HOUR, mtimeNs: BigInt(T0) * 1_000_000n - 1n }
  const { mounts, handle } = unitKeepstore([{ uuid: 'zzzzz-nyw5e-00000000000000a' }], clock)
  const volume = mounts[0]!.volume
  const hash = md5('re-check')
  const written = await volume.write(hash, Readable.from([Buffer.from('re-check')]))
  // Between the worker's check and the volume's trash, the copy's mtime becomes exactly the cutoff.
  const realTrash = volume.trash.bind(volume)
  const realStat = volume.stat.bind(volume)
  let statted = false
  volume.stat = async (h) => {
    const s = await realStat(h)
    statted = true
    return s
  }
  volume.trash = async (h, options) => {
    if (statted) {
      clock.mtimeNs = BigInt(T0) * 1_000_000n
      await volume.touch(h)
    }
    return realTrash(h, { ...options, ifMtime: undefined })
  }
  t.equal(await handle({ locator: `${hash}+8`, block_mtime: written.mtime }), 'skipped')
  t.ok(await live(mounts[0]!, hash), 'notNewerThan refused a copy exactly TTL old')
})

t.test('trash list guard (b) is checked before the volume is asked; the skip is logged', async (t) => {
  const clock = { nowMs: T0, mtimeNs: BigInt(T0) * 1_000_000n }
  const { mounts, handle, trashCalls, logs } = unitKeepstore([{ uuid: 'zzzzz-nyw5e-00000000000000a' }], clock)
  const hash = md5('exact mtime')
  await mounts[0]!.volume.write(hash, Readable.from([Buffer.from('exact mtime')]))
  clock.nowMs = T0 + 2 * HOUR
  t.equal(await handle({ locator: `${hash}+11`, block_mtime: clock.mtimeNs + 1n }), 'skipped')
  t.same(trashCalls, [], 'the volume was never asked')
  t.ok(logs.some((l) => l.msg === 'trash item skipped: mtime differs'))
})

t.test('trash list: an absent copy is skipped, any other volume error fails the item', async (t) => {
  const clock = { nowMs: T0 + 2 * HOUR, mtimeNs: BigInt(T0) * 1_000_000n }
  const { mounts, handle } = unitKeepstore([{ uuid: 'zzzzz-nyw5e-00000000000000a' }], clock)
  const hash = md5('nowhere')
  t.equal(await handle({ locator: `${hash}+7`, block_mtime: clock.mtimeNs }), 'skipped', 'absent → skipped')
  mounts[0]!.volume.stat = async () => {
    throw Object.assign(new Error('EIO'), { code: 'KEEP_IO' })
  }
  await t.rejects(handle({ locator: `${hash}+7`, block_mtime: clock.mtimeNs }), { code: 'KEEP_IO' }, 'an I/O error is not swallowed')
})

t.test('trash list with blobTrash off: skipped and logged, the volume never asked', async (t) => {
  const volume = createMemoryVolume({ uuid: 'zzzzz-nyw5e-00000000000000a' })
  const mount = new Mount({ volume, replication: 1, storageClasses: ['default'], priority: 0, readOnly: false, minFreeSpace: 0 })
  const keepstore = new Keepstore({ uuid: 'ks', mounts: [mount], cluster: { blobTrash: false, blobSigningTTLSeconds: 3600 } as ClusterConfig, logger: silentLogger(), now: () => T0 })
  const logs: Array<{ msg?: string; mount?: unknown }> = []
  let asked = 0
  volume.stat = async () => {
    asked++
    throw new Error('not expected')
  }
  const handle = createTrashHandler({ keepstore, logger: captureLogger(logs) })
  t.equal(await handle({ locator: `${md5('x')}+1`, block_mtime: 1n }), 'skipped')
  t.equal(asked, 0)
  const entry = logs.find((l) => l.msg === 'trash item skipped: blobTrash is off')
  t.ok(entry, 'the skip is logged')
  t.equal(entry?.mount, null, 'mount: null, not left out')
})
