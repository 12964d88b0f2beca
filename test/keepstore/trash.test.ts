import t from 'tap'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { startCluster, call, ADMIN_TOKEN } from '../helpers/cluster.js'
import { createTrashHandler } from '../../keepstore/trash-worker.js'
import { Keepstore } from '../../keepstore/keepstore.js'
import { Mount } from '../../keepstore/mount.js'
import { createMemoryVolume } from '../../keepstore/volumes/memory-volume.js'
import { silentLogger } from '../../shared/logger.js'
import type { ClusterConfig } from '../../shared/config.js'

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
