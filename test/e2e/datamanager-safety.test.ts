import t from 'tap'
import { ADMIN_TOKEN, call } from '../helpers/cluster.js'
import { COLL, refusalFixture } from '../helpers/refusal-fixture.js'
import { startProcessCluster, type KeepstoreProcess } from '../helpers/process-cluster.js'

// PROTOCOL §8 refusals, end to end: child keepstores on real directories,
// each behind a recording proxy (which can also cut an index), and the real
// bin/datamanager. Keepstore 3 serves keepstore 0's directory read-only
// through a symlink (started first, before 0 claims it): one device, two
// mounts. Only the duplicate-device test lists it in the datamanager's config.
const pc = await startProcessCluster(t, { keepstores: 4, proxies: true, sharesRootOf: { 3: 0 }, startFirst: [3] })
const [k0, k1, k2, k3] = pc.keepstores as [KeepstoreProcess, KeepstoreProcess, KeepstoreProcess, KeepstoreProcess]
const main = [k0, k1, k2]
const { records, expectRefusal, everywhere } = await refusalFixture(pc, main)

t.test('datamanager e2e: an index that lacks its final empty line → refused, nothing pulled or trashed', (t) =>
  expectRefusal(t, {
    code: 'index-incomplete',
    arrange: async () => void (k1.proxy!.indexFault = 'cut'),
    restore: async () => void (k1.proxy!.indexFault = undefined),
    run: () => pc.datamanager({ name: 'cut', collections: records(10), keepstores: [0, 1, 2] }),
  }))

// A keepstore whose disk fails mid-listing stops the index without its final
// line (or, through a proxy, the connection breaks). A SIGSTOPped keepstore
// would instead hang the run until the client's 2-minute timeout, and chmod
// 000 does not stop root: the proxy sends half the body, then resets.
t.test('datamanager e2e: an index that fails after output began → refused, nothing pulled or trashed', (t) =>
  expectRefusal(t, {
    code: 'index-incomplete',
    arrange: async () => void (k1.proxy!.indexFault = 'reset'),
    restore: async () => void (k1.proxy!.indexFault = undefined),
    run: () => pc.datamanager({ name: 'reset', collections: records(10), keepstores: [0, 1, 2] }),
  }))

t.test('datamanager e2e: a keepstore that does not answer → refused, only empty trash lists to those that answered', async (t) => {
  await expectRefusal(t, {
    code: 'keepstore-unavailable',
    answering: [k0, k1],
    silent: [k2],
    arrange: async () => void t.equal(await k2.stop(), 0, 'keepstore 2 stopped cleanly'),
    restore: () => k2.start(),
    run: () => pc.datamanager({ name: 'down', collections: records(10), keepstores: [0, 1, 2] }),
  })
})

t.test('datamanager e2e: no collection read → refused', (t) =>
  expectRefusal(t, {
    code: 'no-collections',
    run: () => pc.datamanager({ name: 'empty', collections: '', keepstores: [0, 1, 2] }),
  }))

t.test('datamanager e2e: one malformed collection record (a truncated line) → refused', (t) =>
  expectRefusal(t, {
    code: 'malformed-collection',
    run: () =>
      pc.datamanager({
        name: 'malformed',
        collections: `${records(10)}{"uuid":"${COLL(10)}","manifest_text":". ${everywhere} 0:1:f\\n","replic\n`,
        keepstores: [0, 1, 2],
      }),
  }))

t.test('datamanager e2e: two mounts with one device_id (one directory, two keepstores) → refused', async (t) => {
  const mounts = await Promise.all([k0, k3].map(async (k) => (JSON.parse((await call(k.direct, 'GET', '/mounts', { token: ADMIN_TOKEN })).text) as Array<{ uuid: string; device_id: string }>)[0]!))
  t.not(mounts[0]!.uuid, mounts[1]!.uuid, 'two different mount uuids')
  t.equal(mounts[0]!.device_id, mounts[1]!.device_id, 'one device_id')
  await expectRefusal(t, {
    code: 'duplicate-device',
    answering: [k0, k1, k2, k3],
    run: () => pc.datamanager({ name: 'device', collections: records(10), keepstores: [0, 1, 2, 3] }),
  })
})
