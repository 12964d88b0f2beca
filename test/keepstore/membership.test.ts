import net from 'node:net'
import t from 'tap'
import { loadConfig } from '../../shared/config.js'
import { createEtcdClient, etcdKeys } from '../../shared/etcd-client.js'
import { md5hex } from '../../shared/hash.js'
import { silentLogger } from '../../shared/logger.js'
import { startKeepstore } from '../../keepstore/server.js'
import { ADMIN_TOKEN, call, startCluster } from '../helpers/cluster.js'
import { testView, untilState, withEtcd } from '../helpers/etcd.js'
import { spawnKeepstore, writeChildCluster } from '../helpers/keepstore-child.js'

withEtcd(t, async (t, etcd) => {
  const etcd1s = { etcd: { endpoints: [etcd.endpoint], leaseTTL: '1s' } }

  t.test('membership: a keepstore registers {url, volumes, started, version}; GET /status shows who is live; a clean stop deletes the key at once', async (t) => {
    const cluster = await startCluster(t, { keepstores: 2, cluster: etcd1s })
    const [ks0, ks1] = cluster.config.keepstores
    const view = await testView(t, cluster.config)
    await untilState(view, ks0!.uuid, 'live')
    await untilState(view, ks1!.uuid, 'live')
    t.match(view.members()[1]!.registration, { url: ks1!.url, volumes: [ks1!.volumes[0]!.uuid], version: '0.1.0', started: /^\d{4}-/ })
    await untilState(cluster.keepstores[0]!.membership!.view, ks1!.uuid, 'live')
    const status = JSON.parse((await call(cluster.urls[0]!, 'GET', '/status', { token: ADMIN_TOKEN })).text) as { membership: unknown }
    t.match(status.membership, { etcd: 'ok', keepstores: [{ uuid: ks0!.uuid, url: ks0!.url, state: 'live' }, { uuid: ks1!.uuid, state: 'live' }] })
    await cluster.keepstores[1]!.close()
    // Well inside the 1 s lease: the key went with the revoke, not with an expiry.
    await untilState(view, ks1!.uuid, 'absent', 500)
    await untilState(cluster.keepstores[0]!.membership!.view, ks1!.uuid, 'absent', 500)
    const after = JSON.parse((await call(cluster.urls[0]!, 'GET', '/status', { token: ADMIN_TOKEN })).text) as { membership: unknown }
    t.match(after.membership, { etcd: 'ok', keepstores: [{ state: 'live' }, { uuid: ks1!.uuid, state: 'absent', since: /^\d{4}-/ }] })
  })

  t.test('membership: a killed keepstore vanishes within leaseTTL + 2 s; restarted, it registers again', async (t) => {
    const cluster = await writeChildCluster(t.testdir({}), { cluster: etcd1s })
    const config = await loadConfig(cluster.file)
    const uuid = cluster.uuids[0]!
    const view = await testView(t, config)
    const first = await spawnKeepstore(cluster, 0)
    t.teardown(() => first.kill())
    await untilState(view, uuid, 'live')
    const startedBefore = view.members()[0]!.registration!.started
    await first.kill()
    const took = await untilState(view, uuid, 'absent', 3000)
    t.ok(took <= 3000, `gone ${took} ms after SIGKILL (lease 1 s)`)
    // The restart runs in this process (a child costs a second of CPU): a new keepstore for the same uuid, config and disk.
    const again = await startKeepstore(config, { uuid, logger: silentLogger(), shutdownGraceMs: 1000 })
    t.teardown(() => again.close())
    await untilState(view, uuid, 'live', 5000)
    t.not(view.members()[0]!.registration!.started, startedBefore, 'the new process registered itself')
  })

  t.test('membership: a registration for a uuid the config does not list is ignored and logged', async (t) => {
    const client = await createEtcdClient({ endpoints: [etcd.endpoint], prefix: '/keep/zzzzz/', leaseTTLSeconds: 1 })
    t.teardown(() => client.close())
    const stranger = etcdKeys.member('/keep/zzzzz/', 'zzzzz-bi6l4-999999999999999')
    await client.put(stranger).value(JSON.stringify({ url: 'http://127.0.0.1:9', volumes: [] }))
    t.teardown(() => client.delete().key(stranger).exec())
    const logs: object[] = []
    const cluster = await startCluster(t, { keepstores: 1, cluster: etcd1s, logs })
    t.ok(await cluster.keepstores[0]!.membership!.view.ready(5000), 'the keepstore listed the membership')
    t.ok(logs.some((l) => (l as { key?: string }).key === stranger), 'and logged the stranger key')
    const view = await testView(t, cluster.config)
    t.same(view.members().map((m) => m.uuid), [cluster.config.keepstores[0]!.uuid], 'only configured keepstores are members')
    t.equal(view.stateOf('http://127.0.0.1:9'), 'unknown', 'its url is nobody')
  })

  t.test('pull worker: a source known to be down is skipped at once; with etcd unreachable it is tried as before', async (t) => {
    // Keepstore 1 is configured but never runs: a listener that never answers holds its port.
    const cluster = await startCluster(t, { keepstores: 2, cluster: etcd1s, pullHeadersTimeoutMs: 300 })
    const [a, b] = cluster.urls as [string, string]
    await cluster.keepstores[1]!.close()
    const sockets: net.Socket[] = []
    const silent = net.createServer((socket) => {
      sockets.push(socket)
      socket.on('error', () => undefined)
    })
    await new Promise<void>((resolve) => silent.listen(Number(new URL(b).port), '127.0.0.1', resolve))
    t.teardown(() => {
      for (const s of sockets) s.destroy()
      return new Promise((r) => silent.close(r))
    })
    const view = cluster.keepstores[0]!.membership!.view
    await untilState(view, cluster.config.keepstores[1]!.uuid, 'absent')
    const data = 'pull me from a dead server'
    const list = JSON.stringify([{ locator: `${md5hex(data)}+${data.length}`, servers: [b] }])
    const pull = cluster.keepstores[0]!.worklists.pull
    t.equal((await call(a, 'PUT', '/pull', { token: ADMIN_TOKEN, body: list })).status, 200)
    await pull.idle()
    t.match(pull.status(), { failed: 1, done: 0 })
    t.equal(sockets.length, 0, 'the down source was never contacted')

    await etcd.stop()
    t.teardown(() => etcd.start())
    const deadline = Date.now() + 5000
    while (view.current && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    t.equal(view.stateOf(b), 'unknown', 'etcd gone: liveness unknown')
    t.equal((await call(a, 'PUT', '/pull', { token: ADMIN_TOKEN, body: list })).status, 200)
    await pull.idle()
    t.match(pull.status(), { failed: 1 })
    t.equal(sockets.length, 1, 'liveness unknown: the source is tried, as without etcd')
    const status = JSON.parse((await call(a, 'GET', '/status', { token: ADMIN_TOKEN })).text) as { membership: unknown }
    t.match(status.membership, { etcd: 'unreachable', keepstores: [{ state: 'unknown', since: null }, { state: 'unknown' }] })
  })
})
