import http from 'node:http'
import path from 'node:path'
import type { Test } from 'tap'
import t from 'tap'
import { createCoordination, type Coordination } from '../../datamanager/coordination.js'
import type { DatamanagerClient } from '../../datamanager/indexes.js'
import type { Lock, LockHandle } from '../../datamanager/lock.js'
import { startService } from '../../datamanager/service.js'
import type { RunResult } from '../../datamanager/run.js'
import { createEtcdClient, etcdKeys } from '../../shared/etcd-client.js'
import type { Config } from '../../shared/config.js'
import { md5hex } from '../../shared/hash.js'
import { KeepstoreClient } from '../../shared/keepstore-client.js'
import { silentLogger } from '../../shared/logger.js'
import { watchMembership, type MembershipView } from '../../shared/membership.js'
import { listDigest } from '../../shared/worklist-items.js'
import { ADMIN_TOKEN, call } from '../helpers/cluster.js'
import {
  HOUR,
  RecordingClient,
  T0,
  collection,
  putBlock,
  rendezvous,
  settle,
  startDmCluster,
  whereIs,
  writeCollections,
  type DmCluster,
} from '../helpers/datamanager-cluster.js'
import { untilState, withEtcd, type EtcdServer } from '../helpers/etcd.js'

const COLL = 'zzzzz-4zz18-000000000000001'
let clusters = 0

interface EtcdDm {
  dm: DmCluster
  view: MembershipView
  /**
   * What a datamanager process runs with (as bin/datamanager builds it): the
   * file lock plus the etcd lock, and a membership view, on an etcd client
   * of its own. `config` for a datamanager on another host.
   */
  coordination(config?: Config): Promise<Coordination>
  /** A recording client of its own (the PUTs one datamanager sent). */
  recorder(): RecordingClient
  etcdClient: Awaited<ReturnType<typeof createEtcdClient>>
  lockKey: string
}

/** Three in-process keepstores registered in etcd (1 s leases, a prefix of their own), a view of them, and datamanager parts. */
async function etcdDm(t: Test, etcd: EtcdServer, datamanager: Record<string, unknown> = {}): Promise<EtcdDm> {
  const prefix = `/test${++clusters}/`
  const dm = await startDmCluster(t, { cluster: { etcd: { endpoints: [etcd.endpoint], prefix, leaseTTL: '1s' } }, datamanager })
  const config = dm.config.cluster.etcd!
  const etcdClient = await createEtcdClient(config)
  const view = watchMembership(etcdClient, dm.config)
  t.teardown(async () => {
    await view.close()
    etcdClient.close()
  })
  t.ok(await view.ready(10_000), 'membership listed')
  for (const ks of dm.config.keepstores) await untilState(view, ks.uuid, 'live')
  const lockKey = etcdKeys.lock(prefix)
  return {
    dm,
    view,
    etcdClient,
    lockKey,
    async coordination(config = dm.config) {
      const c = await createCoordination(config, silentLogger())
      t.teardown(() => c.close())
      return c
    },
    recorder() {
      const inner = new KeepstoreClient({ token: ADMIN_TOKEN })
      t.teardown(() => inner.close())
      return new RecordingClient(inner)
    },
  }
}

/** Stores `data` on the keepstore with `uuid`; returns its locator. */
function putOn(dm: DmCluster, uuid: string, data: string): Promise<string> {
  return putBlock(dm.urls[dm.config.keepstores.findIndex((k) => k.uuid === uuid)]!, data)
}

/** The same cluster seen from a datamanager on another host: a state directory (spill, report) of its own. */
function anotherHost(dm: DmCluster, name: string): Config {
  const stateDir = path.join(dm.dir, name)
  const own = { stateDir, reportFile: path.join(stateDir, 'report.json'), lostBlocksFile: path.join(stateDir, 'lost-blocks.txt') }
  return { ...dm.config, datamanager: { ...dm.config.datamanager!, ...own } }
}

/** A client whose first GET /mounts waits for `gate`; `reached` resolves when a run gets there (its first step is done). */
function gatedClient(inner: DatamanagerClient, gate: Promise<void>): DatamanagerClient & { reached: Promise<void> } {
  let arrive!: () => void
  const reached = new Promise<void>((resolve) => (arrive = resolve))
  return {
    reached,
    async getJson(server, p, options) {
      arrive()
      await gate
      return inner.getJson(server, p, options)
    },
    getStream: (server, p, options) => inner.getStream(server, p, options),
    putJson: (server, p, json, options) => inner.putJson(server, p, json, options),
  }
}

/** Wraps a lock so the test sees the handle it gave (its fence and lost signal). */
function capturing(lock: Lock, seen: LockHandle[]): Lock {
  return {
    description: lock.description,
    async tryAcquire() {
      const handle = await lock.tryAcquire()
      if (handle !== undefined) seen.push(handle)
      return handle
    },
  }
}

const trashDigest = async (url: string): Promise<string> =>
  (JSON.parse((await call(url, 'GET', '/trash', { token: ADMIN_TOKEN })).text) as { digest: string }).digest

withEtcd(t, async (t, etcd) => {
  t.test('datamanager on etcd: two started together → exactly one acts, its lists all carry its fence; a uuid in etcd that the config does not list is never used', async (t) => {
    const { dm, coordination, recorder, etcdClient } = await etcdDm(t, etcd)
    const block = await putBlock(dm.urls[0]!, 'wanted twice\n')
    await writeCollections(dm.collectionsFile, [collection(COLL, [block])])
    let strangerRequests = 0
    const stranger = http.createServer((req, res) => {
      strangerRequests++
      res.end('[]')
    })
    await new Promise<void>((resolve) => stranger.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise((r) => stranger.close(r)))
    const strangerUrl = `http://127.0.0.1:${(stranger.address() as { port: number }).port}`
    await etcdClient.put(etcdKeys.member(dm.config.cluster.etcd!.prefix, 'zzzzz-bi6l4-999999999999999')).value(JSON.stringify({ url: strangerUrl, volumes: ['zzzzz-nyw5e-999999999999999'] }))
    const clients = [recorder(), recorder()]
    const hostB = anotherHost(dm, 'dm-b')
    const [a, b] = await Promise.all([coordination(), coordination(hostB)])
    const results = await Promise.all([
      dm.run({ lock: a.lock, client: clients[0]!, membership: a.membership! }),
      dm.run({ config: hostB, lock: b.lock, client: clients[1]!, membership: b.membership! }),
    ])
    t.same(results.map((r) => r.exitCode).sort(), [0, 3], 'one ran, the other found the lock held')
    const winner = results.findIndex((r) => r.exitCode === 0)
    t.same(clients[1 - winner]!.sent, [], 'the other sent nothing')
    const sent = clients[winner]!.sent
    t.ok(sent.length >= 6, 'the winner sent its lists')
    const fences = new Set(sent.map((s) => s.fence))
    t.equal(fences.size, 1, 'one fence for the whole run')
    t.match([...fences][0], /^[1-9]\d*$/, 'an etcd revision')
    t.same(sent.slice(0, 3).map((s) => [s.path, s.body]), [['/trash', '[]'], ['/trash', '[]'], ['/trash', '[]']], 'first step: an empty trash list to every server')
    t.equal(results[winner]!.report?.outcome, 'committed')
    t.same(results[winner]!.report?.servers.map((s) => s.uuid), dm.config.keepstores.map((k) => k.uuid), 'only configured keepstores were planned')
    t.equal(strangerRequests, 0, 'the stranger in etcd was never contacted')
    t.notOk(sent.some((s) => s.url === strangerUrl || s.body.includes(strangerUrl)), 'nor named as a pull source')
  })

  t.test('datamanager on etcd: a stale holder that resumes after a new holder\'s first step is refused by every server, and exits 3', async (t) => {
    const { dm, coordination, recorder, etcdClient, lockKey } = await etcdDm(t, etcd)
    const block = await putBlock(dm.urls[0]!, 'balanced by the new holder\n')
    await writeCollections(dm.collectionsFile, [collection(COLL, [block])])
    let open!: () => void
    const stale = recorder()
    const gated = gatedClient(stale, new Promise((resolve) => (open = resolve)))
    const handles: LockHandle[] = []
    const staleRun = dm.run({ lock: capturing((await coordination()).lock, handles), client: gated })
    t.teardown(async () => {
      open()
      await staleRun
    })
    await gated.reached
    // The stale holder "pauses" past its lock: the key goes, its lease (and keepalives) do not, so it does not know.
    await etcdClient.delete().key(lockKey).exec()
    const fresh = recorder()
    const hostB = anotherHost(dm, 'dm-b')
    const newer = await dm.run({ lock: (await coordination(hostB)).lock, client: fresh, config: hostB })
    t.equal(newer.exitCode, 0, 'the new holder ran')
    t.ok(BigInt(fresh.sent[0]!.fence!) > BigInt(handles[0]!.fence!), 'with a higher fence')
    const digests = await Promise.all(dm.urls.map(trashDigest))
    open()
    const result: RunResult = await staleRun
    t.equal(result.exitCode, 3, 'the stale holder exits 3')
    t.equal(result.report?.outcome, 'fenced')
    const late = stale.sent.slice(3)
    t.ok(late.length >= 1, 'it tried to commit')
    t.same(await Promise.all(dm.urls.map(trashDigest)), digests, 'no list of the stale holder was applied')
    for (const url of dm.urls) {
      const res = await call(url, 'PUT', '/trash', { token: ADMIN_TOKEN, body: '[]', headers: { 'X-Keep-Fence': handles[0]!.fence! } })
      t.equal(res.status, 409, `${url} refuses the stale fence`)
    }
    await handles[0]!.release()
  })

  t.test('datamanager on etcd: a lock lost midway → nothing more sent, exit 3', async (t) => {
    const { dm, coordination, recorder, etcdClient, lockKey } = await etcdDm(t, etcd)
    await writeCollections(dm.collectionsFile, [collection(COLL, [await putBlock(dm.urls[0]!, 'x\n')])])
    let open!: () => void
    const client = recorder()
    const gated = gatedClient(client, new Promise((resolve) => (open = resolve)))
    const handles: LockHandle[] = []
    const run = dm.run({ lock: capturing((await coordination()).lock, handles), client: gated })
    t.teardown(async () => {
      open()
      await run
    })
    await gated.reached
    const held = await etcdClient.get(lockKey).exec()
    await etcdClient.leaseClient.leaseRevoke({ ID: held.kvs[0]!.lease })
    await new Promise((resolve) => handles[0]!.lost!.addEventListener('abort', resolve, { once: true }))
    open()
    const result = await run
    t.equal(result.exitCode, 3)
    t.equal(result.report?.outcome, 'fenced')
    t.same(client.sent.slice(3), [], 'only the first step went out')
  })

  t.test('datamanager service on etcd: a keepstore going and coming back each starts a run after membershipSettle; gone, it is down: pulls only', async (t) => {
    const { dm, view, coordination } = await etcdDm(t, etcd, { period: '1h', membershipSettle: '400ms' })
    const uuids = dm.config.keepstores.map((k) => k.uuid)
    const data = 'kept on two of three\n'
    const order = rendezvous(dm, md5hex(data))
    const block = await putOn(dm, order[0]!, data)
    await putOn(dm, order[1]!, data)
    await writeCollections(dm.collectionsFile, [collection(COLL, [block])])
    const runs: Array<{ at: number; result: RunResult | undefined }> = []
    let onRun: (() => void) | undefined
    const stop = new AbortController()
    const { lock, membership } = await coordination()
    const service = await startService({
      config: dm.config,
      client: dm.client,
      lock,
      logger: silentLogger(),
      now: () => dm.clock.now,
      commit: { attempts: 1, sleep: async () => {} },
      membership: membership!,
      signal: stop.signal,
      onRun: (result) => {
        runs.push({ at: Date.now(), result })
        onRun?.()
      },
    })
    const nextRun = (): Promise<void> => new Promise((resolve) => (onRun = resolve))
    t.teardown(async () => {
      stop.abort()
      await service.done
    })
    await (runs.length > 0 ? Promise.resolve() : nextRun())
    t.equal(runs[0]!.result?.report?.outcome, 'committed', 'the first run at start')

    const gone = order[1]!
    const index = uuids.indexOf(gone)
    let ran = nextRun()
    await dm.keepstores[index]!.close()
    const left = Date.now()
    await ran
    const second = runs[1]!
    t.ok(second.at - left >= 400, `a run ${second.at - left} ms after it left (settle 400 ms), not after the 1 h period`)
    t.equal(second.result?.report?.outcome, 'degraded')
    t.same(second.result?.report?.down, [gone])
    t.equal(second.result?.exitCode, 0)
    await settle({ ...dm, keepstores: dm.keepstores.filter((_, i) => i !== index) })
    t.ok((await whereIs({ ...dm, keepstores: dm.keepstores.filter((_, i) => i !== index) })).get(md5hex(data))?.includes(order[2]!), 'its replica was re-made on the next live server')

    ran = nextRun()
    await dm.restart(index)
    await untilState(view, gone, 'live')
    await ran
    t.equal(runs[2]!.result?.report?.outcome, 'committed', 'back: a full run again')
    t.same(runs[2]!.result?.report?.down, [])
  })

  t.test('datamanager on etcd: a down keepstore\'s blocks are re-replicated and no trash is sent until it is back', async (t) => {
    const { dm, coordination } = await etcdDm(t, etcd, { membershipSettle: '0' })
    const { lock, membership } = await coordination()
    const view = membership!
    t.ok(await view.ready(5000))
    const data = 'two replicas wanted\n'
    const order = rendezvous(dm, md5hex(data))
    const block = await putOn(dm, order[0]!, data)
    await putOn(dm, order[1]!, data)
    const garbage = await putOn(dm, order[0]!, 'old garbage\n')
    await writeCollections(dm.collectionsFile, [collection(COLL, [block])])
    dm.clock.now = T0 + 2 * HOUR
    const index = dm.config.keepstores.findIndex((k) => k.uuid === order[1])
    await dm.keepstores[index]!.close()
    await untilState(view, order[1]!, 'absent')

    const degraded = await dm.run({ lock, membership: view })
    t.equal(degraded.exitCode, 0)
    t.equal(degraded.report?.outcome, 'degraded')
    t.same(degraded.report?.down, [order[1]])
    t.same(dm.client.puts('/trash', true), [], 'only empty trash lists')
    t.equal(degraded.report?.categories.garbage.blocks, 1, 'the garbage is seen')
    t.equal(degraded.report?.trashes.sent, 0, 'but not trashed')
    t.ok(dm.client.puts('/pull', true).length > 0, 'pull lists sent')
    const live = { ...dm, keepstores: dm.keepstores.filter((_, i) => i !== index) }
    await settle(live)
    const where = await whereIs(live)
    t.same(where.get(md5hex(data))?.sort(), [order[0]!, order[2]!].sort(), 'the block is on two live servers again')
    t.ok(where.has(garbage.slice(0, 32)), 'the garbage is still there')

    await dm.restart(index)
    await untilState(view, order[1]!, 'live')
    const back = await dm.run({ lock, membership: view })
    t.equal(back.report?.outcome, 'committed', 'every keepstore live: trash resumes')
    t.ok(back.report!.trashes.sent >= 1)
    await settle(dm)
    t.notOk((await whereIs(dm)).has(garbage.slice(0, 32)), 'the garbage is trashed')
  })

  // Last: it stops etcd.
  t.test('datamanager on etcd: etcd stopped → no datamanager acts (exit 3); block reads and writes still work', async (t) => {
    const { dm, coordination } = await etcdDm(t, etcd)
    await writeCollections(dm.collectionsFile, [collection(COLL, [await putBlock(dm.urls[0]!, 'z\n')])])
    const { lock, membership } = await coordination()
    await etcd.stop()
    t.teardown(() => etcd.start())
    const result = await dm.run({ lock, membership: membership! })
    t.equal(result.exitCode, 3)
    t.equal(result.report, undefined, 'no run, no report')
    t.same(dm.client.sent, [], 'nothing sent')
    const data = 'written while etcd is down\n'
    const locator = await putBlock(dm.urls[1]!, data)
    const signed = (await call(dm.urls[1]!, 'PUT', `/${md5hex(data)}`, { body: data, token: ADMIN_TOKEN })).text.trim()
    const got = await call(dm.urls[1]!, 'GET', `/${signed}`, { token: ADMIN_TOKEN })
    t.equal(got.status, 200)
    t.equal(got.text, data)
    t.equal(locator, `${md5hex(data)}+${data.length}`)
    t.equal((await call(dm.urls[2]!, 'PUT', '/trash', { token: ADMIN_TOKEN, body: '[]' })).status, 200, 'an operator list is still accepted')
    t.equal(listDigest('[]'), await trashDigest(dm.urls[2]!))
  })
})
