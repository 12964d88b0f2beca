import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { md5hex } from '../../shared/hash.js'
import { createFileLock } from '../../datamanager/lock.js'
import { captureLogger } from '../helpers/cluster.js'
import {
  HOUR,
  T0,
  collection,
  putBlock,
  rendezvous,
  settle,
  startDmCluster,
  whereIs,
  writeCollections,
} from '../helpers/datamanager-cluster.js'

const COLL = (n: number): string => `zzzzz-4zz18-${String(n).padStart(15, '0')}`

t.test('run: misplaced blocks reach their rendezvous servers in two runs, extras and old garbage are trashed, young garbage stays, lost blocks are listed', async (t) => {
  const dm = await startDmCluster(t)
  const uuids = dm.config.keepstores.map((k) => k.uuid)
  const urlOf = (uuid: string): string => dm.urls[uuids.indexOf(uuid)]!

  // Referenced, but only on the server rendezvous ranks last: wanted on the first two.
  const misplaced: string[] = []
  for (let i = 0; i < 4; i++) {
    const data = `misplaced block ${i}\n`
    const hash = md5hex(data)
    misplaced.push(await putBlock(urlOf(rendezvous(dm, hash)[2]!), data))
  }
  const garbage = await putBlock(dm.urls[0]!, 'old garbage\n')
  const lost = 'acbd18db4cc2f85cedef654fccc4a4d8+3'
  await writeCollections(dm.collectionsFile, [
    collection(COLL(1), misplaced.slice(0, 2)),
    collection(COLL(2), [...misplaced.slice(2), lost]),
    collection(COLL(3), [lost], { replication_desired: 1 }),
  ])

  dm.clock.now = T0 + 1000
  const first = await dm.run()
  t.equal(first.exitCode, 0, 'first run commits')
  t.equal(first.report?.categories['under-replicated'].blocks, 4)
  t.equal(first.report?.pulls.sent, 8, 'two pulls per misplaced block')
  t.equal(first.report?.trashes.sent, 0, 'nothing is old enough to trash')
  t.equal(first.report?.categories.lost.blocks, 1)
  await settle(dm)

  dm.clock.now = T0 + 2 * HOUR
  const young = await putBlock(dm.urls[1]!, 'young garbage\n')
  const second = await dm.run()
  t.equal(second.exitCode, 0, 'second run commits')
  t.equal(second.report?.categories['over-replicated'].blocks, 4, 'the misplaced copies are now extras')
  t.equal(second.report?.categories.garbage.blocks, 1)
  t.equal(second.report?.trashes.sent, 5, 'four extras and one garbage block')
  await settle(dm)

  const where = await whereIs(dm)
  for (const locator of misplaced) {
    const hash = locator.slice(0, 32)
    t.same([...(where.get(hash) ?? [])].sort(), rendezvous(dm, hash).slice(0, 2).sort(), `${hash} sits on its first two rendezvous servers`)
  }
  t.notOk(where.has(garbage.slice(0, 32)), 'old garbage trashed')
  t.same(where.get(young.slice(0, 32)), [uuids[1]], 'young garbage untouched')

  const lostFile = await readFile(path.join(dm.stateDir, 'lost-blocks.txt'), 'utf8')
  t.equal(lostFile, `${lost} ${COLL(2)} ${COLL(3)}\n`, 'lost block listed with its collections')
  const report = JSON.parse(await readFile(path.join(dm.stateDir, 'report.json'), 'utf8')) as { outcome: string }
  t.equal(report.outcome, 'committed')

  const third = await dm.run()
  t.equal(third.report?.categories.ok.blocks, 4, 'a third run finds everything in place')
  t.equal(third.report?.pulls.decided, 0)
})

t.test('run: --dry-run sends nothing, writes the lists it would send, and leaves the state alone', async (t) => {
  const dm = await startDmCluster(t)
  await putBlock(dm.urls[0]!, 'garbage\n')
  const kept = await putBlock(dm.urls[1]!, 'kept\n')
  await writeCollections(dm.collectionsFile, [collection(COLL(1), [kept])])
  dm.clock.now = T0 + 2 * HOUR
  const printed: string[] = []
  const out = { write: (s: string) => printed.push(s) > 0 } as unknown as NodeJS.WritableStream
  const result = await dm.run({ dryRun: true, out })
  t.equal(result.exitCode, 0)
  t.equal(result.report?.outcome, 'dry-run')
  t.same(dm.client.sent, [], 'no request sent')
  t.equal(result.report?.trashes.sent, 1, 'the garbage block would be trashed')
  t.equal(result.report?.pulls.sent, 1, 'the kept block would get its second copy')
  const trashFile = path.join(dm.stateDir, 'dry-run', `${dm.config.keepstores[0]!.uuid}.trash.json`)
  t.match(await readFile(trashFile, 'utf8'), /^\[\{"locator":"[0-9a-f]{32}\+8","block_mtime":\d{19},"mount_uuid":"zzzzz-nyw5e-/, 'trash list written exactly')
  t.equal(printed.length, 3, 'one line per server')
  await t.rejects(readFile(path.join(dm.stateDir, 'last-run.json'), 'utf8'), { code: 'ENOENT' }, 'no state written')
  for (const k of dm.keepstores) t.equal(k.worklists.trash.status().digest, null)
})

t.test('run: another instance holding the lock → exit 3 and nothing sent', async (t) => {
  const dm = await startDmCluster(t)
  await writeCollections(dm.collectionsFile, [collection(COLL(1), [])])
  const held = await createFileLock(dm.stateDir).tryAcquire()
  t.ok(held, 'the test holds the lock')
  const result = await dm.run()
  t.equal(result.exitCode, 3)
  t.equal(result.report, undefined)
  t.same(dm.client.sent, [])
  await held!.release()
  t.equal((await dm.run()).exitCode, 0, 'runs once the lock is released')
})

t.test('run: every server gets an empty trash list before anything else when the servers or mounts changed, and only then', async (t) => {
  const dm = await startDmCluster(t)
  const block = await putBlock(dm.urls[0]!, 'one copy\n')
  await writeCollections(dm.collectionsFile, [collection(COLL(1), [block])])
  const first = await dm.run()
  t.equal(first.report?.topologyChanged, true, 'no previous run counts as a change')
  const firstPulls = dm.client.sent.findIndex((s) => s.path === '/pull')
  t.same(dm.client.sent.slice(0, firstPulls).map((s) => [s.path, s.body]), [['/trash', '[]'], ['/trash', '[]'], ['/trash', '[]']])
  await settle(dm)

  dm.client.sent.length = 0
  const second = await dm.run()
  t.equal(second.report?.topologyChanged, false)
  t.equal(dm.client.sent[0]?.path, '/pull', 'an unchanged layout starts with pull lists')
  t.equal(dm.client.sent.length, 6, 'one pull and one trash list per server, empty ones included')

  dm.client.sent.length = 0
  const fewer = { ...dm.config, keepstores: dm.config.keepstores.slice(0, 2) }
  const third = await dm.run({ config: fewer })
  t.equal(third.report?.topologyChanged, true, 'a server gone is a change')
  t.same(dm.client.sent.slice(0, 2).map((s) => [s.path, s.body]), [['/trash', '[]'], ['/trash', '[]']])
})

t.test('run: an index that arrives unsorted is spilled to disk and balanced all the same', async (t) => {
  const dm = await startDmCluster(t)
  const blocks: string[] = []
  for (let i = 0; i < 6; i++) blocks.push(await putBlock(dm.urls[0]!, `block ${i}\n`))
  await putBlock(dm.urls[0]!, 'garbage\n')
  await writeCollections(dm.collectionsFile, [collection(COLL(1), blocks)])
  const mount = dm.config.keepstores[0]!.volumes[0]!.uuid
  dm.client.indexes.set(`${dm.urls[0]} /mounts/${mount}/blocks`, (body) => `${body.trim().split('\n').reverse().join('\n')}\n\n`)
  dm.clock.now = T0 + 2 * HOUR
  const logs: Array<{ msg?: string; mount?: string }> = []
  const result = await dm.run({ referenceBufferChars: 2, logger: captureLogger(logs) })
  t.equal(result.exitCode, 0)
  t.ok(logs.some((l) => l.mount === mount && /not sorted/.test(l.msg ?? '')), 'the unsorted index was noticed and spilled')
  t.equal(result.report?.servers[0]?.mounts[0]?.index, 'complete')
  t.equal(result.report?.indexLines, 7)
  t.equal(result.report?.categories['under-replicated'].blocks, 6)
  t.equal(result.report?.categories.garbage.blocks, 1)
  const wanted = blocks.reduce((n, b) => n + (rendezvous(dm, b.slice(0, 32)).slice(0, 2).includes(dm.config.keepstores[0]!.uuid) ? 1 : 2), 0)
  t.equal(result.report?.pulls.sent, wanted, 'a pull for each wanted position that lacks the block')
})

t.test('run: a list a keepstore refuses to take is retried, then reported, exit 1', async (t) => {
  const dm = await startDmCluster(t)
  await writeCollections(dm.collectionsFile, [collection(COLL(1), [])])
  t.equal((await dm.run()).exitCode, 0)
  dm.client.sent.length = 0
  dm.client.down.add(dm.urls[2]!)
  let calls = 0
  const put = dm.client.putJson.bind(dm.client)
  dm.client.putJson = async (url, p, body, o) => {
    if (url === dm.urls[1] && p === '/pull' && calls++ === 0) throw new Error('503 overloaded')
    return put(url, p, body, o)
  }
  dm.client.down.clear()
  const result = await dm.run()
  t.equal(result.exitCode, 0, 'one failure, then success on the retry')
  t.equal(calls, 2)
  dm.client.putJson = async (url, p, body, o) => {
    if (url === dm.urls[1] && p === '/trash') throw new Error('503 overloaded')
    return put(url, p, body, o)
  }
  const failed = await dm.run()
  t.equal(failed.exitCode, 1)
  t.equal(failed.report?.outcome, 'commit-failed')
  t.equal(failed.report?.servers[1]?.trashes.outcome, 'failed')
  t.equal(failed.report?.servers[1]?.pulls.outcome, 'sent')
})
