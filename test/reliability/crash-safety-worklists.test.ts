// The worklist half of the crash-safety suite (crash-safety.test.ts has the PUT half):
// SIGKILL a keepstore process while it pulls, trashes, or empties its trash.
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, renameSync, utimesSync, writeFileSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import { adminJson, getIndex, putBlock } from '../helpers/block-client.js'
import { createLauncher, spawnKeepstore, writeChildCluster } from '../helpers/keepstore-child.js'
import { figure, scale } from '../helpers/soak.js'
import { auditVolume } from '../helpers/volume-audit.js'
import { seededRandom } from '../helpers/volume-suite.js'

const md5 = (data: Uint8Array): string => createHash('md5').update(data).digest('hex')

// Child processes restart many times: a loaded machine needs more than the default file timeout.
t.setTimeout(Math.max(300_000, (scale('pull-kills', 2, 30) + scale('trash-kills', 2, 30) + scale('emptier-kills', 2, 30)) * 20_000))

interface ListStatus {
  queued: number
  in_progress: number
  items: Array<{ locator: string }>
}

/** Waits (bounded) for a condition on a child process's state: the one place a test polls, because the state is in another process. */
async function until(what: string, check: () => Promise<boolean> | boolean, deadlineMs = 30_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + deadlineMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still waiting after ${deadlineMs} ms: ${what}`)
    await delay(everyMs)
  }
}

async function listStatus(url: string, list: 'pull' | 'trash'): Promise<ListStatus> {
  const res = await adminJson(url, 'GET', `/${list}`)
  if (res.status !== 200) throw new Error(`GET /${list}: ${res.status}`)
  return res.json as ListStatus
}

/** PUTs `n` small random blocks, eight at a time; returns hash → bytes. */
async function populate(url: string, n: number, random: () => number): Promise<Map<string, Buffer>> {
  const blocks = new Map<string, Buffer>()
  const all = Array.from({ length: n }, () => randomBytes(1 + Math.floor(random() * 64 * 1024)))
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let data = all.pop(); data; data = all.pop()) {
        const res = await putBlock(url, data)
        if (res.status !== 200) throw new Error(`populating: PUT ${res.status}`)
        blocks.set(md5(data), data)
      }
    }),
  )
  return blocks
}

t.test('keepstore process: SIGKILL during a pull run leaves nothing partial and the pull list resumes', async (t) => {
  const kills = scale('pull-kills', 2, 30)
  const random = seededRandom(4242)
  const cluster = await writeChildCluster(t.testdir(), { keepstores: 2, cluster: { blobSigning: false } })
  const [source, target] = cluster.urls as [string, string]
  const a = await spawnKeepstore(cluster, 0)
  t.teardown(() => a.kill())
  const blocks = await populate(source, scale('pull-blocks', 50, 1500), random)
  const launcher = createLauncher(cluster, 1)
  let b = await launcher.start()
  t.teardown(async () => {
    await b.kill()
    await launcher.close()
  })
  const items = [...blocks].map(([h, d]) => ({ locator: `${h}+${d.length}`, servers: [source], mount_uuid: cluster.volumes[1]!.uuid }))
  t.equal((await adminJson(target, 'PUT', '/pull', items)).status, 200, 'pull list accepted')
  const root = cluster.volumes[1]!.root
  const problems = { partial: [] as string[], tempLeft: [] as string[], dropped: [] as string[] }
  let resumed = 0
  for (let k = 0; k < kills; k++) {
    // The first kill lands right after the 200, while the run is surely going; later ones at random.
    if (k > 0) await delay(random() * 150)
    await b.kill()
    const dead = auditVolume(root)
    problems.partial.push(...dead.bad)
    b = await launcher.start()
    // The restarted worker may open new temp files at once: only those from before the kill must be gone.
    problems.tempLeft.push(...auditVolume(root).temps.filter((n) => dead.temps.includes(n)))
    const status = await listStatus(target, 'pull')
    const queued = new Set(status.items.map((i) => i.locator.split('+')[0]!))
    // Work was left at the kill (read off the dead process's volume, not the restarted one's queue, which
    // may already have drained): only the resumed list can finish it, and the end state checks it did.
    if ([...blocks.keys()].some((h) => !dead.blocks.has(h))) resumed++
    // Every item is done (the block is here, looked at after the list), queued, or running again: none was lost to the kill.
    const now = auditVolume(root)
    const missing = [...blocks.keys()].filter((h) => !now.blocks.has(h) && !queued.has(h))
    if (missing.length > status.in_progress) problems.dropped.push(...missing)
  }
  await until('the pull list drains', async () => {
    const s = await listStatus(target, 'pull')
    return s.queued === 0 && s.in_progress === 0
  })
  const final = auditVolume(root)
  t.same(problems, { partial: [], tempLeft: [], dropped: [] }, `${kills} kills: nothing partial, no temp after restart, no item dropped undone`)
  t.equal([...blocks.keys()].filter((h) => final.blocks.has(h)).length, blocks.size, `all ${blocks.size} blocks pulled, whole`)
  t.ok(resumed > 0, `${resumed} kills left pulls undone, which only the resumed list could finish`)
  figure(t, 'crash-safety-pull', { kills, blocks: blocks.size, resumed, partial: problems.partial.length, dropped: problems.dropped.length })
})

t.test('keepstore process: SIGKILL during a trash run trashes only listed blocks, nothing partial, the list resumes', async (t) => {
  const kills = scale('trash-kills', 2, 30)
  const random = seededRandom(777)
  // blobSigningTTL 1s: blocks whose mtime the test sets an hour back are old enough to trash.
  const cluster = await writeChildCluster(t.testdir(), { cluster: { blobSigning: false, blobSigningTTL: '1s' } })
  const url = cluster.urls[0]!
  const root = cluster.volumes[0]!.root
  const launcher = createLauncher(cluster, 0)
  let ks = await launcher.start()
  t.teardown(async () => {
    await ks.kill()
    await launcher.close()
  })
  const blocks = await populate(url, scale('trash-blocks', 200, 3000), random)
  await ks.kill()
  const old = new Date(Date.now() - 3600_000)
  for (const h of blocks.keys()) utimesSync(`${root}/${h.slice(0, 3)}/${h}`, old, old)
  ks = await launcher.start()
  const index = await getIndex(url)
  const listed = new Set([...blocks.keys()].filter((_, i) => i % 2 === 0))
  const body = `[${[...listed].map((h) => `{"locator":"${h}+${blocks.get(h)!.length}","block_mtime":${index.mtimes.get(h)},"mount_uuid":"${cluster.volumes[0]!.uuid}"}`).join(',')}]`
  t.equal((await adminJson(url, 'PUT', '/trash', body)).status, 200, 'trash list accepted')
  const problems = { partial: [] as string[], tempLeft: [] as string[], lostLive: [] as string[], vanished: [] as string[], dropped: [] as string[] }
  let resumed = 0
  for (let k = 0; k < kills; k++) {
    // The first kill lands right after the 200, while the run is surely going; later ones at random.
    if (k > 0) await delay(random() * 100)
    await ks.kill()
    const dead = auditVolume(root)
    problems.partial.push(...dead.bad)
    const trashed = new Set(dead.trashed.values())
    problems.lostLive.push(...[...blocks.keys()].filter((h) => !listed.has(h) && !dead.blocks.has(h)))
    problems.vanished.push(...[...listed].filter((h) => !dead.blocks.has(h) && !trashed.has(h)))
    ks = await launcher.start()
    problems.tempLeft.push(...auditVolume(root).temps)
    const status = await listStatus(url, 'trash')
    const queued = new Set(status.items.map((i) => i.locator.split('+')[0]!))
    // Work was left at the kill (a listed block still live on the dead process's volume): only the resumed
    // list can trash it, and the end state checks it did. The restarted keepstore's queue is no witness: it
    // may have finished the rest before GET /trash asks (seen: 100 renames done within the start-up).
    if ([...listed].some((h) => dead.blocks.has(h))) resumed++
    // A listed block still live (looked at after the list) must be queued or running again: the list resumes where the kill cut it.
    const now = auditVolume(root)
    const missing = [...listed].filter((h) => now.blocks.has(h) && !queued.has(h))
    if (missing.length > status.in_progress) problems.dropped.push(...missing)
  }
  await until('the trash list drains', async () => {
    const s = await listStatus(url, 'trash')
    return s.queued === 0 && s.in_progress === 0
  })
  const final = auditVolume(root)
  t.same(problems, { partial: [], tempLeft: [], lostLive: [], vanished: [], dropped: [] }, `${kills} kills: nothing partial, no unlisted block lost, no listed one dropped`)
  t.same([...blocks.keys()].filter((h) => final.blocks.has(h) !== !listed.has(h)), [], 'in the end exactly the listed blocks are trashed')
  t.ok(resumed > 0, `${resumed} kills left listed blocks live, which only the resumed list could trash`)
  figure(t, 'crash-safety-trash', { kills, blocks: blocks.size, listed: listed.size, resumed, lost_live: problems.lostLive.length, partial: problems.partial.length })
})

t.test('keepstore process: SIGKILL while the trash emptier runs never touches a live block', async (t) => {
  const kills = scale('emptier-kills', 2, 30)
  const random = seededRandom(31337)
  const cluster = await writeChildCluster(t.testdir(), { cluster: { blobSigning: false, blobTrashLifetime: '0', blobTrashCheckInterval: '200ms' } })
  const url = cluster.urls[0]!
  const root = cluster.volumes[0]!.root
  const launcher = createLauncher(cluster, 0)
  let ks = await launcher.start()
  t.teardown(async () => {
    await ks.kill()
    await launcher.close()
  })
  const blocks = await populate(url, scale('emptier-blocks', 100, 6000), random)
  await ks.kill()
  // Half the blocks become trash whose lifetime is over (as a trash run an hour ago would have left them).
  const deadline = Math.floor(Date.now() / 1000) - 3600
  const live = new Set<string>()
  for (const [i, h] of [...blocks.keys()].entries()) {
    const dir = `${root}/${h.slice(0, 3)}`
    if (i % 2 === 0) renameSync(`${dir}/${h}`, `${dir}/${h}.trash.${deadline}`)
    else live.add(h)
  }
  // Enough expired trash besides (written straight to disk, tiny) that emptying it takes a while: the kills
  // below land while the emptier is deleting, not before it starts or after it is done.
  const trashPaths = [...blocks.keys()].filter((h) => !live.has(h)).map((h) => `${root}/${h.slice(0, 3)}/${h}.trash.${deadline}`)
  for (let i = 0; i < scale('emptier-trash', 3000, 20000); i++) {
    const data = Buffer.from(`expired trash ${i}`)
    const h = md5(data)
    mkdirSync(`${root}/${h.slice(0, 3)}`, { recursive: true })
    const file = `${root}/${h.slice(0, 3)}/${h}.trash.${deadline}`
    writeFileSync(file, data)
    trashPaths.push(file)
  }
  const problems = { partial: [] as string[], tempLeft: [] as string[], lostLive: [] as string[] }
  let trashLeft = trashPaths.length
  let midEmpty = 0
  let killed = 0
  for (let k = 0; k < kills; k++) {
    ks = await launcher.start()
    // The emptier's first pass starts one check interval (200 ms) after start: kill at a random point
    // (0–20 ms) after it deleted its first file of this round. Nothing slow may come between the start
    // and this look (an audit hashing every file took longer than the whole emptying on a loaded host).
    const remaining = trashPaths.filter((f) => existsSync(f))
    if (remaining.length === 0) {
      // A long soak can run out of trash: nothing left to be cut off.
      await ks.kill()
      break
    }
    await until('the emptier starts deleting', () => remaining.some((f) => !existsSync(f)), 10_000, 1)
    await delay(random() * 20)
    await ks.kill()
    killed++
    const dead = auditVolume(root)
    if (dead.trashed.size > 0 && dead.trashed.size < trashLeft) midEmpty++
    // A start removes the temp files a kill left (before it listens), and emptying makes none.
    problems.tempLeft.push(...dead.temps)
    problems.partial.push(...dead.bad)
    problems.lostLive.push(...[...live].filter((h) => !dead.blocks.has(h)))
    trashLeft = dead.trashed.size
  }
  ks = await launcher.start()
  await until('the trash is emptied', () => auditVolume(root).trashed.size === 0)
  const final = auditVolume(root)
  problems.tempLeft.push(...final.temps)
  t.same(problems, { partial: [], tempLeft: [], lostLive: [] }, `${killed} kills: nothing partial, no temp, no live block lost`)
  t.same([...live].filter((h) => !final.blocks.has(h)), [], `all ${live.size} live blocks are still there, whole`)
  const index = await getIndex(url)
  t.equal(index.blocks.size, live.size, 'the index lists exactly the live blocks')
  t.ok(midEmpty > 0, `${midEmpty} kills landed while the emptier was deleting`)
  figure(t, 'crash-safety-emptier', { kills: killed, live: live.size, trash: trashPaths.length, mid_empty: midEmpty, lost_live: problems.lostLive.length })
})
