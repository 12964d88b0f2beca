import t from 'tap'
import { createFenceGate, parseFence } from '../../keepstore/fence.js'
import { openStateDb } from '../../keepstore/state-db.js'
import { createWorklistStore, readStoredFence } from '../../keepstore/worklist-store.js'
import { isKeepError } from '../../shared/errors.js'
import { listDigest } from '../../shared/worklist-items.js'
import { ADMIN_TOKEN, call, startCluster } from '../helpers/cluster.js'

const fenceRows: Array<[string | string[] | undefined, bigint | undefined | 'bad']> = [
  [undefined, undefined],
  ['0', 0n],
  ['42', 42n],
  [' 42 ', 42n],
  ['9223372036854775807', 2n ** 63n - 1n],
  ['9223372036854775808', 'bad'],
  ['-1', 'bad'],
  ['042', 'bad'],
  ['1.5', 'bad'],
  ['1e3', 'bad'],
  ['', 'bad'],
  ['abc', 'bad'],
  [['1', '2'], 'bad'],
]

t.test('fence header: absent, or one decimal int64 ≥ 0; anything else is a 400', async (t) => {
  for (const [header, want] of fenceRows) {
    if (want === 'bad') t.throws(() => parseFence(header), { code: 'KEEP_BAD_REQUEST' }, JSON.stringify(header))
    else t.equal(parseFence(header), want, JSON.stringify(header))
  }
})

t.test('fence gate: lists go one at a time; a lower fence is refused whichever order they arrive in; equal is accepted', async (t) => {
  const gate = createFenceGate(5n)
  const saved: string[] = []
  const write = (s: string): Promise<void> => new Promise((resolve) => setImmediate(() => (saved.push(s), resolve())))
  const results = await Promise.allSettled([gate.apply(7n, write), gate.apply(6n, write), gate.apply(undefined, write), gate.apply(7n, write)])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
  t.ok(isKeepError((results[1] as PromiseRejectedResult).reason, 'KEEP_FENCED'))
  t.same(saved, ['7', '7', '7'], 'a list without the header is saved with the highest fence, never a lower one')
  t.equal(gate.highest, 7n)
})

t.test('fence gate: a list whose write failed does not raise the fence', async (t) => {
  const gate = createFenceGate(3n)
  await t.rejects(gate.apply(9n, async () => Promise.reject(new Error('disk full'))))
  t.equal(gate.highest, 3n)
  await gate.apply(4n, async () => undefined)
  t.equal(gate.highest, 4n, 'the next list with a fence above 3 is taken')
})

t.test('worklist store: the fence is saved with the list (the meta switch); a list without one keeps it', async (t) => {
  const db = await openStateDb(t.testdir())
  t.teardown(() => db.close())
  const sub = db.sublevel('trash')
  const store = createWorklistStore(sub, { encode: (s: string) => s, decode: (s: string) => s })
  await store.load()
  t.equal(await readStoredFence(sub), 0n, 'none before any list')
  await store.replace(['a'], { digest: 'd1', receivedAt: new Date(0), fence: '12' })
  t.equal(await readStoredFence(sub), 12n)
  await store.replace(['b'], { digest: 'd2', receivedAt: new Date(0) })
  t.equal(await readStoredFence(sub), 12n, 'an unfenced replace leaves the fence as it was')
})

t.test('PUT /pull, /trash: a stale fenced list → 409 and the newer list stays, also after a restart; lists without the header are accepted', async (t) => {
  const cluster = await startCluster(t, { keepstores: 1 })
  const mount = cluster.config.keepstores[0]!.volumes[0]!.uuid
  const put = (list: 'pull' | 'trash', body: string, fence?: string) =>
    call(cluster.keepstores[0]!.url, 'PUT', `/${list}`, { token: ADMIN_TOKEN, body, headers: fence === undefined ? {} : { 'X-Keep-Fence': fence } })
  const digestOf = async (list: 'pull' | 'trash'): Promise<string> =>
    (JSON.parse((await call(cluster.keepstores[0]!.url, 'GET', `/${list}`, { token: ADMIN_TOKEN })).text) as { digest: string }).digest
  const newer = JSON.stringify([{ locator: 'acbd18db4cc2f85cedef654fccc4a4d8+3', block_mtime: 1, mount_uuid: mount }])
  const older = JSON.stringify([{ locator: '37b51d194a7513e7b0cdfc5e6f4e9f2b+3', block_mtime: 2, mount_uuid: mount }])

  t.equal((await put('trash', newer, '1000')).status, 200)
  t.equal((await put('pull', '[]', '1000')).status, 200, 'the same fence again (one holder, several lists)')
  const refused = await put('trash', older, '999')
  t.equal(refused.status, 409)
  t.match(refused.text, /fence/)
  t.equal((await put('pull', '[]', '999')).status, 409, 'pull and trash share one highest fence')
  t.equal(await digestOf('trash'), listDigest(newer), 'the newer list stays')
  t.equal((await put('trash', older, 'x')).status, 400, 'an unreadable fence is a 400')
  t.equal(await digestOf('trash'), listDigest(newer))

  await cluster.restart(0)
  t.equal((await put('trash', older, '999')).status, 409, 'the fence survived the restart')
  t.equal(await digestOf('trash'), listDigest(newer))
  t.equal((await put('pull', '[]')).status, 200, 'an operator list without the header is accepted')
  await cluster.restart(0)
  t.equal((await put('pull', '[]', '999')).status, 409, 'and did not lower the fence, restart or not')
  t.equal((await put('trash', older, '1001')).status, 200, 'a newer holder is accepted')
  t.equal(await digestOf('trash'), listDigest(older))
})
