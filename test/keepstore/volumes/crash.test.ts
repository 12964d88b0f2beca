import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createDirectoryVolume } from '../../../keepstore/volumes/directory-volume.js'
import { collect, drain, md5, seededRandom } from '../../helpers/volume-suite.js'

const WRITER = fileURLToPath(new URL('../../helpers/crash-writer.js', import.meta.url))
// The HTTP-level crash suite (test/reliability/crash-safety) kills the whole daemon 30+ times; this one keeps the volume alone in view.
const KILLS = 6
/** Rounds go on past KILLS until one kill lands mid-write: under a loaded CI run all six once missed. */
const MAX_ROUNDS = 30
const SEED = 20240611

/**
 * Starts the writer; resolves once it has acknowledged its first block (so
 * every round has something acknowledged to lose, however loaded the machine).
 * Acks land in `acked`.
 */
async function startWriter(root: string, seed: number, acked: Set<string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [WRITER, root, String(seed)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } })
  const firstAck = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`crash writer exited early (code ${code})`)))
    createInterface({ input: child.stdout as NonNullable<typeof child.stdout> }).on('line', (line) => {
      if (!line.startsWith('ack ')) return
      acked.add(line.slice(4))
      resolve()
    })
  })
  await firstAck
  return child
}

/** Hidden files left in the root or any block directory. */
function leftovers(root: string): string[] {
  const out = readdirSync(root).filter((n) => n.startsWith('.') && n !== '.keep-volume.json')
  for (const sub of readdirSync(root).filter((n) => /^[0-9a-f]{3}$/.test(n))) {
    out.push(...readdirSync(`${root}/${sub}`).filter((n) => n.startsWith('.')).map((n) => `${sub}/${n}`))
  }
  return out
}

t.test('directory volume: SIGKILL mid-write never leaves a partial or lost block', async (t) => {
  const root = t.testdir()
  const random = seededRandom(SEED)
  const acked = new Set<string>()
  let killedMidWrite = 0
  for (let round = 0; round < KILLS || (killedMidWrite === 0 && round < MAX_ROUNDS); round++) {
    const child = await startWriter(root, SEED + round, acked)
    child.removeAllListeners('exit')
    // The one place a timer belongs: a kill at a random moment.
    await new Promise((resolve) => setTimeout(resolve, 5 + random() * 80))
    const closed = once(child, 'close')
    child.kill('SIGKILL')
    const [, signal] = (await closed) as [number | null, NodeJS.Signals | null]
    if (signal !== 'SIGKILL') t.fail(`round ${round}: writer ended by ${signal ?? 'exit'} before the kill`)
    if (leftovers(root).length > 0) killedMidWrite++

    const volume = createDirectoryVolume({ uuid: 'zzzzz-nyw5e-0000000crashtest', root })
    await volume.open()
    const stray = leftovers(root)
    const visible = await collect(volume.index(''))
    const bad: string[] = []
    for (const block of visible) {
      const r = await volume.read(block.hash)
      const got = await drain(r.stream)
      if (got.error || md5(got.data) !== block.hash || got.data.length !== block.size) bad.push(block.hash)
    }
    const seen = new Set(visible.map((b) => b.hash))
    const lost = [...acked].filter((h) => !seen.has(h))
    t.same({ stray, bad, lost }, { stray: [], bad: [], lost: [] }, `round ${round}: ${visible.length} blocks verify, ${acked.size} acked present, no temp left`)
    await volume.close()
  }
  t.ok(acked.size >= KILLS, `the writer acknowledged ${acked.size} blocks (one at least before each kill)`)
  t.ok(killedMidWrite > 0, `${killedMidWrite} kills left a temp file for open() to remove`)
})
