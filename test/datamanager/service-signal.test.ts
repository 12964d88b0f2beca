import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY } from '../helpers/cluster.js'
import { startFakeKeepstore } from './fake-keepstore.js'

// Compiled to dist/test/datamanager/: the repository root is three levels up.
const BIN = fileURLToPath(new URL('../../../bin/datamanager', import.meta.url))

interface LogLine {
  msg: string
  outcome?: string
}

t.test('service: SIGUSR1 starts a run at once; during a run it is not interrupted, and one more run (however many signals) follows it (keep-balance)', async (t) => {
  // A keepstore whose index answers only when the test says: a run is "in progress" while its index waits.
  const held: Array<() => void> = []
  let onIndex: (() => void) | undefined
  const fake = await startFakeKeepstore(t, 0, async (out) => {
    await new Promise<void>((resolve) => {
      held.push(resolve)
      onIndex?.()
    })
    await out.write('\n')
    out.end()
  })
  const indexRequested = (n: number): Promise<void> =>
    held.length >= n ? Promise.resolve() : new Promise((resolve) => (onIndex = () => held.length >= n && resolve()))

  const dir = t.testdir({ 'collections.jsonl': `${JSON.stringify({ uuid: 'zzzzz-4zz18-000000000000001', manifest_text: '' })}\n` })
  const config = path.join(dir, 'cluster.json')
  await writeFile(
    config,
    JSON.stringify({
      cluster: { id: 'zzzzz', systemRootToken: ADMIN_TOKEN, managementToken: MANAGEMENT_TOKEN, blobSigningKey: SIGNING_KEY },
      keepstores: [{ uuid: 'zzzzz-bi6l4-000000000000000', url: `http://127.0.0.1:${fake.port}`, volumes: [{ uuid: fake.mount, driver: 'memory' }] }],
      datamanager: { collections: 'collections.jsonl', stateDir: 'dm', period: '1h' },
    }),
  )
  const child = spawn(process.execPath, [BIN, '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const lines: LogLine[] = []
  let onLine: (() => void) | undefined
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(JSON.parse(line) as LogLine)
    onLine?.()
  })
  /** Resolves once `count` log lines match. */
  const logged = (match: (l: LogLine) => boolean, count = 1): Promise<void> => {
    const enough = (): boolean => lines.filter(match).length >= count
    return enough() ? Promise.resolve() : new Promise((resolve) => (onLine = () => enough() && resolve()))
  }
  const runsDone = (l: LogLine): boolean => l.outcome !== undefined
  const waiting = (l: LogLine): boolean => /^next run in 3600 s/.test(l.msg)

  await indexRequested(1)
  await logged((l) => l.msg === 'datamanager service started: a run every period and on SIGUSR1')
  child.kill('SIGUSR1')
  await logged((l) => l.msg === 'SIGUSR1')
  child.kill('SIGUSR1')
  await logged((l) => l.msg === 'SIGUSR1', 2)
  t.equal(lines.filter(runsDone).length, 0, 'the first run is still waiting for its index: not interrupted')
  t.equal(lines.filter((l) => l.msg === 'run requested during a run: another starts when this one ends').length, 1, 'two signals during a run queue one run')
  held[0]!()
  await indexRequested(2)
  t.equal(lines.filter(runsDone).length, 1, 'the queued run starts as soon as the first one ends, without waiting for the period')
  held[1]!()
  await logged(waiting)
  t.equal(lines.filter(runsDone).length, 2)
  t.equal(held.length, 2, 'then the service waits: the two signals made one run, not two')

  child.kill('SIGUSR1')
  await logged((l) => l.msg === 'run requested: starting now')
  await indexRequested(3)
  held[2]!()
  await logged(waiting, 2)
  t.same(lines.filter(runsDone).map((l) => l.outcome), ['committed', 'committed', 'committed'])
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'SIGTERM stops it after the run')
})
