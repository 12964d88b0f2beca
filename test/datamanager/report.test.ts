import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { createAtomicWriter, writeFileAtomic } from '../../datamanager/atomic-file.js'
import { createTotals } from '../../datamanager/balance-report.js'
import { ChangeSets } from '../../datamanager/change-sets.js'
import { buildReport, summaryLine, type ReportInput } from '../../datamanager/report.js'

const H = 'acbd18db4cc2f85cedef654fccc4a4d8'

function input(over: Partial<ReportInput> = {}): ReportInput {
  const sets = new ChangeSets([{ uuid: 's0', url: 'http://k0' }], { pullLimit: 1, trashLimit: 5 })
  sets.add(
    {
      category: 'misplaced',
      pulls: [{ server: 's0', item: { locator: `${H}+3`, servers: ['http://k1'] } }, { server: 's0', item: { locator: `${H}+3`, servers: ['http://k1'] } }],
      trashes: [{ server: 's0', item: { locator: `${H}+3`, block_mtime: 5n } }],
    },
    3,
  )
  const totals = createTotals()
  totals.categories.ok.blocks = 7
  totals.categories.lost = { blocks: 1, bytes: 10, replicas: 0 }
  totals.pulls = { items: 2, bytes: 6 }
  totals.trashes = { items: 1, bytes: 3 }
  return {
    startedAt: Date.UTC(2024, 0, 1),
    finishedAt: Date.UTC(2024, 0, 1) + 2500,
    dryRun: false,
    forced: false,
    outcome: 'committed',
    exitCode: 0,
    refusals: [],
    topologyChanged: false,
    collections: { files: 1, collections: 4, references: 9, malformed: 0, malformedRecords: [], tooLarge: 0, tooLargeRecords: [], unreadable: undefined },
    referencedBlocks: 8,
    blocks: 9,
    indexLines: 12,
    totals,
    servers: [{ uuid: 's0', url: 'http://k0', mounts: [{ uuid: 'm0', deviceId: 'd', priority: 0, replication: 1, allowWrite: true, allowTrash: true, storageClasses: ['default'] }], error: undefined }],
    indexes: [{ server: 's0', mount: 'm0', state: 'complete', lines: 12, error: undefined, read: 'full', fullReason: 'no stored index', bytes: 660, prefixesReread: 0 }],
    changeSets: sets.list(),
    commits: [{ server: 's0', url: 'http://k0', pull: 'sent', trash: 'sent', error: undefined }],
    lostFile: '/x/lost-blocks.txt',
    timings: { collectionsMs: 1, balanceMs: 2, commitMs: 3 },
    incremental: { collections: 'read', fullMounts: 1, incrementalMounts: 0, indexBytes: 660, prefixesReread: 0, prefixesReused: 0, stateSaved: true },
    ...over,
  }
}

t.test('report: counts per category, pulls and trashes decided, sent and deferred', async (t) => {
  const report = buildReport(input())
  t.equal(report.durationMs, 2500)
  t.equal(report.startedAt, '2024-01-01T00:00:00.000Z')
  t.same(report.pulls, { decided: 2, decidedBytes: 6, sent: 1, sentBytes: 3, deferred: 1 })
  t.same(report.trashes, { decided: 1, decidedBytes: 3, sent: 1, sentBytes: 3, deferred: 0 })
  t.same(report.lost, { blocks: 1, bytes: 10, file: '/x/lost-blocks.txt' })
  t.same(report.servers[0]?.mounts[0], {
    uuid: 'm0',
    deviceId: 'd',
    storageClasses: ['default'],
    index: 'complete',
    lines: 12,
    error: undefined,
    read: 'full',
    fullReason: 'no stored index',
    bytesRead: 660,
    prefixesReread: 0,
  })
  t.equal(report.incremental.indexBytes, 660, 'what the run read and reused is reported')
  t.same(report.servers[0]?.pulls, { listed: 1, deferred: 1, outcome: 'sent' })
  t.match(summaryLine(report), /^committed: 9 blocks \(ok 7, .*lost 1.*\), 4 collections; pulls 1 sent 1 deferred; trashes 1 sent 0 deferred; 2\.5 s$/)
})

t.test('report: a refused run sent nothing, a dry run counts what it would send, a failed list is not counted', async (t) => {
  const refusals = [{ code: 'no-collections' as const, message: 'none' }]
  t.equal(buildReport(input({ outcome: 'refused', refusals })).pulls.sent, 0)
  t.equal(buildReport(input({ outcome: 'dry-run', commits: [] })).pulls.sent, 1)
  t.equal(buildReport(input({ outcome: 'dry-run', commits: [], refusals })).trashes.sent, 0)
  const failed = buildReport(input({ outcome: 'commit-failed', commits: [{ server: 's0', url: 'http://k0', pull: 'failed', trash: 'sent', error: 'x' }] }))
  t.same([failed.pulls.sent, failed.trashes.sent], [0, 1])
})

t.test('atomic file: readers see the old content or the new, never a part; an aborted write leaves the old', async (t) => {
  const dir = t.testdir({ 'lost.txt': 'old\n' })
  const file = path.join(dir, 'lost.txt')
  const writer = await createAtomicWriter(file)
  await writer.write('a'.repeat(300_000))
  await writer.write('\n')
  t.equal(await readFile(file, 'utf8'), 'old\n', 'unchanged while writing')
  await writer.abort()
  t.equal(await readFile(file, 'utf8'), 'old\n', 'unchanged after abort')
  t.same(await readdir(dir), ['lost.txt'], 'temporary file removed')
  await writeFileAtomic(file, 'new\n')
  t.equal(await readFile(file, 'utf8'), 'new\n')
  t.same(await readdir(dir), ['lost.txt'])
})
