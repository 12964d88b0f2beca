import t from 'tap'
import { createContext } from '../../client/context.js'
import { clusterStatus, renderStatus, statusExitCode } from '../../client/status.js'
import { createEtcdClient, etcdKeys } from '../../shared/etcd-client.js'
import { freePorts, startCluster } from '../helpers/cluster.js'
import { testView, untilState, withEtcd } from '../helpers/etcd.js'
import { writeConfigFile } from '../helpers/keep-cli.js'

const STRANGER = 'zzzzz-bi6l4-999999999999999'

withEtcd(t, async (t, etcd) => {
  t.test('keep status: live and down from etcd; an unknown uuid ignored; etcd unreachable → one line, liveness unknown, exit 3', async (t) => {
    const cluster = await startCluster(t, { keepstores: 2, cluster: { etcd: { endpoints: [etcd.endpoint], leaseTTL: '1s' } } })
    const [ks0, ks1] = cluster.config.keepstores
    const prefix = cluster.config.cluster.etcd!.prefix
    const ctx = await createContext({ config: writeConfigFile(cluster.dir, cluster.doc) })
    t.teardown(() => ctx.close())
    const view = await testView(t, cluster.config)
    await untilState(view, ks0!.uuid, 'live')
    await untilState(view, ks1!.uuid, 'live')

    // A key for a uuid the config does not list (registration is liveness, never trust).
    const client = await createEtcdClient(cluster.config.cluster.etcd!)
    t.teardown(() => client.close())
    await client.put(etcdKeys.member(prefix, STRANGER)).value(JSON.stringify({ url: 'http://127.0.0.1:9', volumes: [] }))

    const live = await clusterStatus(ctx)
    t.same(live.membership, { etcd: 'ok', endpoints: [etcd.endpoint] })
    t.same(live.keepstores.map((k) => [k.uuid, k.liveness]), [[ks0!.uuid, 'live'], [ks1!.uuid, 'live']], 'both registered; the stranger is not a keepstore')
    t.equal(statusExitCode(live), 0)
    const table = renderStatus(live)
    t.match(table, /^KEEPSTORE\s+URL\s+STATE\s+ETCD\s+VERSION\s/)
    t.match(table, new RegExp(`^${ks1!.uuid}\\s+${ks1!.url}\\s+up\\s+live\\s`, 'm'))
    t.notMatch(table, STRANGER)
    t.notMatch(table, /membership: unknown/)

    // Keepstore 1 stops, as a killed one does: its registration stays until the lease (1 s, no longer kept alive) expires.
    await cluster.keepstores[1]!.close()
    await untilState(view, ks1!.uuid, 'absent', 500)
    const lease = client.lease(1, { autoKeepAlive: false })
    await lease.put(etcdKeys.member(prefix, ks1!.uuid)).value(JSON.stringify({ url: ks1!.url, volumes: [], started: new Date().toISOString(), version: '0.1.0' }))
    await untilState(view, ks1!.uuid, 'live', 2000)
    t.equal((await clusterStatus(ctx)).keepstores[1]!.liveness, 'live', 'registered, though no longer answering: live until its lease expires')
    await untilState(view, ks1!.uuid, 'absent', 4000)
    const down = await clusterStatus(ctx)
    t.same(down.keepstores.map((k) => k.liveness), ['live', 'down'], 'the lease expired: down')
    t.equal(statusExitCode(down), 3)
    t.match(renderStatus(down), new RegExp(`^${ks1!.uuid}\\s+${ks1!.url}\\s+unreachable\\s+down\\s`, 'm'))

    // etcd not answering. `keep status` is a command of its own that remembers nothing of etcd, so an endpoint where
    // nothing listens is what it meets when etcd is down (stopping the test's etcd instead also stops the keepstores' leases).
    const [deadPort] = await freePorts(1)
    const dead = `http://127.0.0.1:${deadPort}`
    const cut = await createContext({
      config: writeConfigFile(cluster.dir, { ...cluster.doc, cluster: { ...(cluster.doc.cluster as object), etcd: { endpoints: [dead], leaseTTL: '1s' } } }, 'etcd-down.json'),
    })
    t.teardown(() => cut.close())
    const unknown = await clusterStatus(cut, { membershipTimeoutMs: 300 })
    t.same(unknown.membership, { etcd: 'unreachable', endpoints: [dead] })
    t.same(unknown.keepstores.map((k) => [k.liveness, k.reachable]), [['unknown', true], ['unknown', false]], 'liveness unknown; everything else still read')
    t.equal(statusExitCode(unknown), 3)
    const text = renderStatus(unknown)
    t.match(text, new RegExp(`^${ks0!.uuid}\\s+${ks0!.url}\\s+up\\s+unknown\\s`, 'm'))
    t.equal(text.split('\n').filter((l) => l.startsWith('membership: ')).join('\n'), `membership: unknown (etcd unreachable: ${dead})`)
    const json = JSON.parse(JSON.stringify(unknown)) as { membership: unknown; keepstores: Array<{ liveness: unknown }> }
    t.same([json.membership, json.keepstores.map((k) => k.liveness)], [{ etcd: 'unreachable', endpoints: [dead] }, ['unknown', 'unknown']], '--json: the same')
  })
})
