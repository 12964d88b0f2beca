import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t, { type Test } from 'tap'
import { createFileLock } from '../../datamanager/lock.js'
import { runDatamanager, type RunResult } from '../../datamanager/run.js'
import { KeepstoreClient } from '../../shared/keepstore-client.js'
import { ADMIN_TOKEN, captureLogger, clusterConfig } from '../helpers/cluster.js'
import { startFakeKeepstore, type FakeKeepstore, type IndexWriter } from './fake-keepstore.js'

const LINE = (n: number): string => `${n.toString(16).padStart(32, '0')}+3 1700000000000000000\n`

interface Outcome {
  result: RunResult
  logs: Array<Record<string, unknown>>
  fakes: FakeKeepstore[]
}

/** One datamanager run against fake keepstores (the first serves `index`, the others a normal empty index). */
async function runAgainst(
  t: Test,
  index: IndexWriter,
  datamanager: Record<string, unknown> = {},
  collections = `${JSON.stringify({ uuid: 'zzzzz-4zz18-000000000000000', manifest_text: '' })}\n`,
): Promise<Outcome> {
  const dir = t.testdir({})
  const normal: IndexWriter = async (out) => {
    await out.write('\n')
    out.end()
  }
  const fakes = [await startFakeKeepstore(t, 0, index), await startFakeKeepstore(t, 1, normal)]
  const config = clusterConfig(
    dir,
    fakes.map((f) => f.port),
    { datamanager: { collections: 'collections.jsonl', stateDir: 'dm', ...datamanager } },
  )
  // The fakes serve mount uuids of their own; the config's volumes are not what the datamanager reads.
  await writeFile(path.join(dir, 'collections.jsonl'), collections)
  const client = new KeepstoreClient({ token: ADMIN_TOKEN })
  t.teardown(() => client.close())
  const logs: Array<Record<string, unknown>> = []
  const result = await runDatamanager({
    config,
    client,
    lock: createFileLock(path.join(dir, 'dm')),
    logger: captureLogger(logs),
    commit: { attempts: 1, sleep: async () => {} },
  })
  return { result, logs: logs as Array<Record<string, unknown>>, fakes }
}

function assertOnlyEmptyTrash(t: Test, fakes: FakeKeepstore[]): void {
  for (const [i, f] of fakes.entries()) {
    // A first run also clears trash lists before reading any index (the layout is new): still only empty ones.
    const sent = f.lists.map((l) => `${l.path} ${l.body}`)
    t.ok(sent.length >= 1, `keepstore ${i} got an empty trash list`)
    t.same(new Set(sent), new Set(['/trash []']), `keepstore ${i} got only empty trash lists and no pull list`)
  }
}

/** Resolves with `work`, or fails the test when it takes longer than `ms` (a liveness bound, not a timing claim). */
async function within<T>(t: Test, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}

t.test('an index line over 1 KiB is refused as soon as it passes 1 KiB, without reading the rest of a 50 MiB line', async (t) => {
  const total = 50 << 20
  const chunk = Buffer.alloc(64 << 10, 'a')
  const { result, fakes } = await within(
    t,
    10_000,
    runAgainst(t, async (out) => {
      await out.write(LINE(1))
      for (let sent = 0; sent < total && !out.closed(); sent += chunk.length) await out.write(chunk)
      if (!out.closed()) out.end()
    }),
  )
  t.equal(result.exitCode, 1, 'exit 1: refused')
  const refusal = result.report!.refusals.find((r) => r.code === 'index-line-too-long')
  t.ok(refusal, 'the reason is index-line-too-long')
  t.match(refusal?.message ?? '', fakes[0]!.mount, 'the reason names the mount')
  t.match(refusal?.message ?? '', 'zzzzz-bi6l4-000000000000000', 'the reason names the server')
  t.ok(fakes[0]!.index.written < total / 2, `the datamanager hung up early (${fakes[0]!.index.written} of ${total} bytes written)`)
  assertOnlyEmptyTrash(t, fakes)
})

t.test('an index that trickles one valid line at a time is cut off at datamanager.runTimeout: refused, reads aborted', async (t) => {
  let n = 0
  const { result, logs, fakes } = await within(
    t,
    10_000,
    runAgainst(
      t,
      async (out) => {
        while (!out.closed()) {
          await out.write(LINE(++n))
          await new Promise((r) => setTimeout(r, 5))
        }
      },
      { runTimeout: '300ms' },
    ),
  )
  t.equal(result.exitCode, 1, 'exit 1: refused')
  t.ok(result.report!.refusals.some((r) => r.code === 'run-timeout'), 'the reason is run-timeout')
  t.equal(result.report!.outcome, 'refused')
  t.ok(fakes[0]!.index.closed, 'the trickling index read was aborted (the connection closed)')
  t.ok(
    logs.some((l) => Array.isArray(l.refusals) && (l.refusals as string[]).includes('run-timeout')),
    'the log says why',
  )
  assertOnlyEmptyTrash(t, fakes)
})

const emptyIndex: IndexWriter = async (out) => {
  await out.write('\n')
  out.end()
}

/** A collection record line of exactly `bytes` bytes. */
function record(uuid: string, bytes: number): string {
  const of = (pad: string): string => JSON.stringify({ uuid, manifest_text: `. ${'a'.repeat(32)}+3 0:3:f${pad}\n` })
  return of('x'.repeat(bytes - of('').length))
}

t.test('a collection record over datamanager.maxRecordBytes refuses the run, naming its uuid; one at the limit does not', async (t) => {
  const over = await runAgainst(t, emptyIndex, { maxRecordBytes: '1KiB' }, `${record('zzzzz-4zz18-000000000000001', 1025)}\n`)
  t.equal(over.result.exitCode, 1, 'one byte over: exit 1')
  const refusal = over.result.report!.refusals.find((r) => r.code === 'record-too-large')
  t.ok(refusal, 'the reason is record-too-large')
  t.match(refusal?.message ?? '', 'zzzzz-4zz18-000000000000001', 'the reason names the uuid')
  assertOnlyEmptyTrash(t, over.fakes)
  const at = await runAgainst(t, emptyIndex, { maxRecordBytes: '1KiB' }, `${record('zzzzz-4zz18-000000000000002', 1024)}\n`)
  t.same(at.result.report!.refusals, [], 'exactly at the limit: no refusal')
  t.equal(at.result.exitCode, 0)
})
