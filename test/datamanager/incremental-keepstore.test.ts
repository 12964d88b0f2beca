import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { HOUR, T0, collection, putBlock, settle, startDmCluster, writeCollections, type DmCluster } from '../helpers/datamanager-cluster.js'

const COLL = (n: number): string => `zzzzz-4zz18-${String(n).padStart(15, '0')}`

/** The lists a full read would send now (a dry run with --full), per server: [pull, trash]. */
async function fullLists(dm: DmCluster): Promise<string[][]> {
  const result = await dm.run({ dryRun: true, full: true })
  if (result.exitCode !== 0) throw new Error(`full dry run exited ${result.exitCode}`)
  const dir = path.join(dm.stateDir, 'dry-run')
  return Promise.all(
    dm.config.keepstores.map(async (k) => [
      (await readFile(path.join(dir, `${k.uuid}.pull.json`), 'utf8')).trimEnd(),
      (await readFile(path.join(dir, `${k.uuid}.trash.json`), 'utf8')).trimEnd(),
    ]),
  )
}

/** The last pull and trash list each server got since `since` (an index into the recorded PUTs). */
function sentLists(dm: DmCluster, since: number): string[][] {
  const sent = dm.client.sent.slice(since)
  return dm.urls.map((url) => ['/pull', '/trash'].map((p) => sent.filter((s) => s.url === url && s.path === p).at(-1)?.body ?? ''))
}

t.test('incremental against real keepstores: digests match the stored lines, only changed prefixes are read again, and the lists are a full read’s', async (t) => {
  const dm = await startDmCluster(t, { volumes: [{ driver: 'memory' }, { driver: 'directory' }] })
  const referenced: string[] = []
  for (let i = 0; i < 6; i++) referenced.push(await putBlock(dm.urls[i % 3]!, `referenced block ${i}\n`))
  await putBlock(dm.urls[1]!, 'garbage\n')
  await writeCollections(dm.collectionsFile, [collection(COLL(1), referenced.slice(0, 4)), collection(COLL(2), referenced.slice(4), { replication_desired: 3 })])
  dm.clock.now = T0 + 2 * HOUR

  const first = await dm.run()
  t.equal(first.exitCode, 0)
  t.equal(first.report?.incremental.fullMounts, 6, 'the first run reads all six mounts in full')
  await settle(dm)

  // The keepstores carried out the pulls and the trash: those prefixes changed.
  let expected = await fullLists(dm)
  let since = dm.client.sent.length
  const second = await dm.run()
  t.equal(second.exitCode, 0)
  t.equal(second.report?.incremental.incrementalMounts, 6, 'every mount read incrementally: the keepstores serve digests')
  t.ok((second.report?.incremental.prefixesReread ?? 0) > 0, `the prefixes the pulls and trashes changed were read again (${second.report?.incremental.prefixesReread})`)
  t.same(sentLists(dm, since), expected, 'the lists of a full read')
  await settle(dm)

  // Run and let the keepstores work until a run has nothing left to send: the cluster is then still.
  for (let i = 0; i < 3; i++) {
    since = dm.client.sent.length
    await dm.run()
    await settle(dm)
    if (sentLists(dm, since).every(([pull, trash]) => pull === '[]' && trash === '[]')) break
  }
  const still = sentLists(dm, since)
  since = dm.client.sent.length
  const unchanged = await dm.run()
  t.same(
    { reread: unchanged.report?.incremental.prefixesReread, bytes: unchanged.report?.incremental.indexBytes, reused: unchanged.report?.incremental.prefixesReused },
    { reread: 0, bytes: 0, reused: 4096 },
    'nothing changed: no index byte read, every decision reused',
  )
  t.same(sentLists(dm, since), still, 'the same (empty) lists as the run before')

  const added = await putBlock(dm.urls[2]!, 'one more block\n')
  await writeCollections(dm.collectionsFile, [collection(COLL(1), referenced.slice(0, 4)), collection(COLL(2), [...referenced.slice(4), added], { replication_desired: 3 })])
  expected = await fullLists(dm)
  since = dm.client.sent.length
  const more = await dm.run()
  t.equal(more.report?.incremental.prefixesReread, 1, 'one prefix of one mount read again')
  t.equal(more.report?.incremental.collections, 'read', 'the collections changed')
  t.equal(more.report?.incremental.prefixesReused, 4095)
  t.same(sentLists(dm, since), expected)
})
