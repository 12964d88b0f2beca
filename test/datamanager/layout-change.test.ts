import t from 'tap'
import { md5hex } from '../../shared/hash.js'
import { serializeTrashList } from '../../shared/worklist-items.js'
import { ADMIN_TOKEN, call } from '../helpers/cluster.js'
import { HOUR, T0, collection, putBlock, rendezvous, settle, startDmCluster, whereIs, writeCollections } from '../helpers/datamanager-cluster.js'

// PROTOCOL §8 (keep-balance's ClearTrashLists): after the servers or mounts changed, every trash
// list is cleared before any index is read, so an old list can no longer trash a copy the new
// plan counts on.

t.test('layout change: a trash list left by an older plan is cleared before the indexes are read, so it cannot remove a copy the new plan keeps', async (t) => {
  const dm = await startDmCluster(t)
  const data = 'three copies, two wanted\n'
  const order = rendezvous(dm, md5hex(data))
  const urlOf = (uuid: string): string => dm.urls[dm.config.keepstores.findIndex((k) => k.uuid === uuid)]!
  let locator = ''
  for (const uuid of order) {
    dm.clock.now += 1000 // distinct mtimes
    locator = await putBlock(urlOf(uuid), data)
  }
  await writeCollections(dm.collectionsFile, [collection('zzzzz-4zz18-000000000000001', [locator])])
  dm.clock.now = T0 + 2 * HOUR
  const first = urlOf(order[0]!)
  const mount = dm.config.keepstores.find((k) => k.uuid === order[0])!.volumes[0]!.uuid
  const index = await call(first, 'GET', `/mounts/${mount}/blocks`, { token: ADMIN_TOKEN })
  const mtime = BigInt(index.text.split('\n')[0]!.split(' ')[1]!)

  // The old plan (another layout) trashed the copy at the first position; its list is still queued
  // there behind a slow worker. It runs at the worst moment: right after that server's index was read.
  let stale = true
  const events: string[] = []
  const put = dm.client.putJson.bind(dm.client)
  dm.client.putJson = async (url, p, body, o) => {
    events.push(`${p} ${url}`)
    if (url === first && p === '/trash') stale = false // a new list replaces the queued one
    return put(url, p, body, o)
  }
  const getStream = dm.client.getStream.bind(dm.client)
  dm.client.getStream = async (url, p, o) => {
    const stream = await getStream(url, p, o)
    if (!p.includes('/blocks')) return stream
    events.push(`index ${url}`)
    if (url === first && stale) {
      await put(url, '/trash', serializeTrashList([{ locator, block_mtime: mtime, mount_uuid: mount }]))
      await settle(dm)
    }
    return stream
  }

  const result = await dm.run()
  t.equal(result.report?.outcome, 'committed')
  const firstIndex = events.findIndex((e) => e.startsWith('index '))
  t.same(
    events.slice(0, firstIndex).sort(),
    dm.urls.map((u) => `/trash ${u}`).sort(),
    'every server took an empty trash list before the first index was read',
  )
  t.same(result.report?.trashes.sent, 1, 'the new plan trashes the copy at the third position')
  await settle(dm)
  const where = await whereIs(dm)
  t.same([...(where.get(locator.slice(0, 32)) ?? [])].sort(), order.slice(0, 2).sort(), 'the two wanted copies are both still there')
})

t.test('layout change: a server that does not take the empty trash list refuses the run (keep-balance stops there too)', async (t) => {
  const dm = await startDmCluster(t)
  await writeCollections(dm.collectionsFile, [collection('zzzzz-4zz18-000000000000001', [])])
  const deaf = dm.urls[1]!
  const put = dm.client.putJson.bind(dm.client)
  dm.client.putJson = async (url, p, body, o) => {
    if (url === deaf && p === '/trash') throw new Error('503 overloaded')
    return put(url, p, body, o)
  }
  const result = await dm.run()
  t.equal(result.exitCode, 1)
  t.same(result.report?.refusals.map((r) => r.code), ['trash-not-cleared'])
  t.match(result.report?.refusals[0]?.message, dm.config.keepstores[1]!.uuid, 'names the server')
  t.same(dm.client.puts('/pull'), [], 'no pull list')
  t.same(dm.client.puts('/trash', true), [], 'only empty trash lists')
  t.equal(result.report?.topologyChanged, true)

  dm.client.putJson = put
  const next = await dm.run()
  t.equal(next.report?.outcome, 'committed', 'the next run clears again and goes on')
})
