import { createHash, randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { Agent } from 'undici'
import { getBlock, getIndex, putBlock } from '../helpers/block-client.js'
import { type KeepstoreChild, createLauncher, writeChildCluster } from '../helpers/keepstore-child.js'
import { figure, isSoak, progress, scale } from '../helpers/soak.js'
import { type AuditCache, auditVolume } from '../helpers/volume-audit.js'
import { seededRandom } from '../helpers/volume-suite.js'

const md5 = (data: Uint8Array): string => createHash('md5').update(data).digest('hex')

// Child processes restart dozens of times: a loaded machine needs more than the default file timeout.
t.setTimeout(Math.max(300_000, scale('kills', 15, 500) * 10_000))
const MiB = 1024 * 1024
// Fewer writers and shorter rounds in the quick run: the kills, not the volume of data, are the point there.
const WRITERS = isSoak() ? 6 : 2

/** Mostly small blocks, some medium, a rare large one (64 MiB at most; smaller in the quick run). */
function blockSize(random: () => number): number {
  const r = random()
  if (r < 0.85) return 1 + Math.floor(random() ** 2 * 16 * 1024)
  if (r < 0.99) return 16 * 1024 + Math.floor(random() * (isSoak() ? MiB : MiB / 4))
  return MiB + Math.floor(random() * (isSoak() ? 63 : 3) * MiB)
}

t.test('keepstore process: SIGKILL during concurrent PUTs loses no acknowledged block and leaves nothing partial', async (t) => {
  const kills = scale('kills', 15, 500)
  const random = seededRandom(Number(process.env.KEEP_SOAK_SEED ?? 20261201))
  const dir = t.testdir()
  const cluster = await writeChildCluster(dir, { cluster: { blobSigning: false } })
  const url = cluster.urls[0]!
  const root = cluster.volumes[0]!.root
  const cache: AuditCache = new Map()
  const acked = new Map<string, number>()
  const verified = new Set<string>()
  const recent: Buffer[] = []
  let attempts = 0
  let acks = 0
  let killedMidWrite = 0
  const problems = { lost: [] as string[], partial: [] as string[], tempLeft: [] as string[], unlisted: 0 }

  const launcher = createLauncher(cluster, 0)
  let ks: KeepstoreChild = await launcher.start()
  t.teardown(async () => {
    await ks.kill()
    await launcher.close()
  })
  for (let round = 0; round < kills; round++) {
    const agent = new Agent({ connections: WRITERS })
    let stopped = false
    // Each round kills only after something was acknowledged in it, so every kill has
    // acknowledged data at stake however slow the machine is (no round is a no-op).
    let ackedInRound!: () => void
    const firstAck = new Promise<void>((resolve) => (ackedInRound = resolve))
    const writer = async (w: number): Promise<void> => {
      // The very first PUT is a full 64 MiB block, so the largest size is cut at least once.
      let first = round === 0 && w === 0
      while (!stopped) {
        const again = recent.length > 0 && random() < 0.1
        const data = first ? randomBytes(64 * MiB) : again ? recent[Math.floor(random() * recent.length)]! : randomBytes(blockSize(random))
        first = false
        attempts++
        try {
          const res = await putBlock(url, data, { dispatcher: agent })
          if (res.status === 200 && res.text.startsWith(`${md5(data)}+${data.length}`)) {
            acked.set(md5(data), data.length)
            acks++
            ackedInRound()
            if (data.length <= MiB) recent.push(data)
            if (recent.length > 16) recent.shift()
          }
        } catch {
          // the connection was cut by the kill: not acknowledged
        }
      }
    }
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w))
    await firstAck
    // The one place a timer belongs: a kill at a random moment.
    await delay(random() * (round === 0 ? 1500 : isSoak() ? 300 : 100))
    await ks.kill()
    stopped = true
    await Promise.all(writers)
    await agent.destroy()

    const dead = auditVolume(root, cache)
    if (dead.temps.length > 0) killedMidWrite++
    problems.partial.push(...dead.bad)
    problems.lost.push(...[...acked.keys()].filter((h) => !dead.blocks.has(h)))

    ks = await launcher.start()
    problems.tempLeft.push(...auditVolume(root, cache).temps)
    const index = await getIndex(url)
    if (!index.complete) t.fail(`round ${round}: index without its final empty line`)
    for (const [hash, size] of acked) if (index.blocks.get(hash) !== size) problems.unlisted++
    for (const [hash, size] of index.blocks) {
      if (verified.has(hash)) continue
      const got = await getBlock(url, hash, size)
      if (got.verified) verified.add(hash)
      else problems.partial.push(`${hash} (GET ${got.status})`)
    }
    progress('crash-safety kills', round + 1, kills)
  }
  // A last full pass: every listed block reads back with the right MD5.
  const index = await getIndex(url)
  let readBack = 0
  for (const [hash, size] of index.blocks) if ((await getBlock(url, hash, size)).verified) readBack++
  t.equal(readBack, index.blocks.size, `all ${index.blocks.size} indexed blocks GET with the right MD5`)
  t.same(problems, { lost: [], partial: [], tempLeft: [], unlisted: 0 }, 'no acknowledged block lost, nothing partial, no temp file after a restart')
  t.ok(acks >= kills, `${acks} of ${attempts} PUTs were acknowledged, ${acked.size} distinct blocks (one PUT at least before each kill)`)
  t.ok(killedMidWrite > 0, `${killedMidWrite} of ${kills} kills caught a write half done`)
  figure(t, 'crash-safety', {
    kills,
    acked: acked.size,
    lost: problems.lost.length + problems.unlisted,
    partial: problems.partial.length,
    temp_left: problems.tempLeft.length,
    mid_write: killedMidWrite,
  })
})
