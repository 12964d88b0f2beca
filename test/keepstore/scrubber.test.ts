import { spawn } from 'node:child_process'
import { lstatSync, readFileSync, readdirSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { Mount } from '../../keepstore/mount.js'
import { MB, RateLimiter, Scrubber, type ScrubClock } from '../../keepstore/scrubber.js'
import { createDirectoryVolume, type FaultHook } from '../../keepstore/volumes/directory-volume.js'
import { createMemoryVolume } from '../../keepstore/volumes/memory-volume.js'
import type { Volume } from '../../keepstore/volumes/volume.js'
import { createLogger } from '../../shared/logger.js'
import { CORRUPTION_KINDS, corruptBlock, hasMkfifo } from '../helpers/corrupt-block.js'
import { ADMIN_TOKEN, MANAGEMENT_TOKEN, SIGNING_KEY, call, clusterConfig, freePorts, startCluster } from '../helpers/cluster.js'
import { startKeepstore } from '../../keepstore/server.js'
import { bytes, chunked, collect, drain, md5, seededRandom } from '../helpers/volume-suite.js'

const silent = createLogger({ level: 'silent' })
const blockPath = (root: string, hash: string): string => `${root}/${hash.slice(0, 3)}/${hash}`
const SIZES = [1, 100, 4096, 65_537, 300_001, 2 * 1024 * 1024 + 5]

function mountOf(volume: Volume): Mount {
  return new Mount({ volume, replication: 1, storageClasses: ['default'], priority: 0, readOnly: false, minFreeSpace: 0 })
}

async function directoryVolume(t: Test, faults?: FaultHook): Promise<{ volume: Volume; root: string }> {
  const root = t.testdir()
  const volume = createDirectoryVolume({ uuid: 'zzzzz-nyw5e-000000000000000', root, ...(faults ? { faults } : {}) })
  await volume.open()
  return { volume, root }
}

/** What "untouched" means for a block file: same inode, size, mtime to the ns, and bytes. */
function fingerprint(file: string): string {
  const st = lstatSync(file, { bigint: true })
  return `${st.ino}:${st.size}:${st.mtimeNs}:${md5(readFileSync(file))}`
}

/** A clock that only moves when the scrubber sleeps: pacing is measured, never waited for. */
function virtualClock(start = 1_700_000_000_000): ScrubClock & { elapsed(): number; sleeps: number[] } {
  let now = start
  const sleeps: number[] = []
  return {
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms)
      now += ms
    },
    elapsed: () => now - start,
    sleeps,
  }
}

t.test('scrubber: every corrupt copy among many good ones is found and quarantined, and no good block is touched', async (t) => {
  const kinds = CORRUPTION_KINDS.filter((k) => k !== 'fifo' || hasMkfifo())
  if (kinds.length < CORRUPTION_KINDS.length) t.comment('no mkfifo here: the fifo case is left out')
  const logs: object[] = []
  const cluster = await startCluster(t, { volumes: [{ driver: 'directory' }], logs })
  const ks = cluster.keepstores[0]!
  const mount = ks.keepstore.mounts[0]!
  const root = cluster.config.keepstores[0]!.volumes[0]!.root!
  const scratch = path.join(cluster.dir, 'scratch')
  await mkdir(scratch)
  const rng = seededRandom(9)
  const blocks = Array.from({ length: 40 }, (_, i) => bytes(SIZES[i % SIZES.length] as number, 1000 + i))
  for (const data of blocks) await mount.volume.write(md5(data), chunked(data))
  const bad = new Map<string, string>()
  for (let i = 0; i < 2 * kinds.length; i++) {
    const hash = md5(blocks[i * 2] as Buffer)
    const kind = kinds[i % kinds.length]!
    await corruptBlock(blockPath(root, hash), hash, kind, { rng, other: blocks[i * 2 + 1] as Buffer, scratchDir: scratch })
    bad.set(hash, kind)
  }
  const good = blocks.map(md5).filter((h) => !bad.has(h))
  const before = new Map(good.map((h) => [h, fingerprint(blockPath(root, h))]))

  const report = await ks.scrubber.scrubOnce()
  t.match(report, { complete: true, volumes: 1, corrupt_found: bad.size, quarantined: bad.size, errors: 0 }, `${bad.size}/${bad.size} found and quarantined`)
  t.equal(report.blocks_checked, blocks.length, 'every block checked once')
  t.same(
    good.filter((h) => fingerprint(blockPath(root, h)) !== before.get(h)),
    [],
    'good blocks keep their inode, size, mtime and bytes',
  )
  const audit = logs.filter((l) => (l as { audit?: string }).audit === 'quarantine') as Array<{ hash: string; mount: string }>
  t.same(audit.map((l) => l.hash).sort(), [...bad.keys()].sort(), 'one audit line per quarantined block')
  t.ok(audit.every((l) => l.mount === mount.uuid), 'audit lines name the mount')
  for (const [hash, kind] of bad) {
    const names = readdirSync(path.dirname(blockPath(root, hash))).filter((n) => n.startsWith(hash))
    t.match(names, [new RegExp(`^${hash}\\.quarantine\\.\\d+$`)], `${kind}: moved aside under a quarantine name`)
  }
  const index = (await call(ks.url, 'GET', '/index', { token: ADMIN_TOKEN })).text
  t.same(index.split('\n').filter(Boolean).map((l) => l.split('+')[0]), [...good].sort(), 'the index lists only the good blocks')

  const status = await call(ks.url, 'GET', '/status', { token: ADMIN_TOKEN })
  t.match(JSON.parse(status.text).scrub, {
    running: false,
    passes: 1,
    last_run: { blocks_checked: blocks.length, corrupt_found: bad.size, quarantined: bad.size, bytes_read: report.bytes_read, finished_at: String },
  }, '/status reports the last run')
  const metrics = (await call(ks.url, 'GET', '/metrics', { token: MANAGEMENT_TOKEN })).text
  t.match(metrics, new RegExp(`keepstore_scrub_quarantined_total\\{volume="${mount.uuid}"\\} ${bad.size}\\n`), 'metrics count quarantines')
  t.match(metrics, new RegExp(`keepstore_scrub_blocks_total\\{volume="${mount.uuid}"\\} ${blocks.length}\\n`), 'and blocks checked')

  const again = await ks.scrubber.scrubOnce()
  t.match(again, { blocks_checked: good.length, corrupt_found: 0, quarantined: 0, errors: 0 }, 'a second pass finds nothing more')
  t.same(good.filter((h) => fingerprint(blockPath(root, h)) !== before.get(h)), [], 'and still touches nothing')
})

t.test('scrubber: a good copy written between detection and quarantine is kept', async (t) => {
  for (const driver of ['directory', 'memory'] as const) {
    const memory = createMemoryVolume({ uuid: 'zzzzz-nyw5e-000000000000001' })
    const dir = driver === 'directory' ? await directoryVolume(t) : undefined
    const volume = dir?.volume ?? memory
    const data = bytes(300_000, 7)
    const hash = md5(data)
    await volume.write(hash, chunked(data))
    if (dir) await writeFile(blockPath(dir.root, hash), bytes(300_000, 8))
    else memory.corruptForTest(hash)
    const repairs: string[] = []
    const scrubber = new Scrubber({
      mounts: () => [mountOf(volume)],
      rateMBps: 0,
      logger: silent,
      beforeQuarantine: async (_mount, h) => {
        repairs.push(h)
        t.equal((await volume.write(h, chunked(data))).outcome, 'written', `${driver}: a PUT replaces the corrupt copy meanwhile`)
      },
    })
    const report = await scrubber.scrubOnce()
    t.same(repairs, [hash], `${driver}: the scan found the corrupt copy`)
    t.match(report, { corrupt_found: 1, quarantined: 0, errors: 0 }, `${driver}: nothing quarantined`)
    const got = await drain((await volume.read(hash)).stream)
    t.ok(got.error === undefined && got.data.equals(data), `${driver}: the good copy is live`)
    if (dir) t.same(readdirSync(path.dirname(blockPath(dir.root, hash))), [hash], `${driver}: no quarantine file`)
  }
})

t.test('scrubber: a PUT of a good copy waits for a quarantine in progress and then lands', async (t) => {
  const events: string[] = []
  let onRename: (() => Promise<void>) | undefined
  let putReachedLock!: () => void
  const atLock = new Promise<void>((resolve) => (putReachedLock = resolve))
  let putAtBlock!: () => void
  const commitStarted = new Promise<void>((resolve) => (putAtBlock = resolve))
  let target = ''
  const { volume, root } = await directoryVolume(t, async (op, p) => {
    if (!target) return
    if (op === 'fsync' && p.includes('.tmp-')) putReachedLock()
    if (op === 'stat' && p === target) {
      events.push('stat block')
      if (put) putAtBlock()
    }
    if (op === 'rename' && p === target && onRename) {
      const pause = onRename
      onRename = undefined
      await pause()
      events.push('quarantine rename')
    }
  })
  const data = bytes(500_000, 11)
  const hash = md5(data)
  await volume.write(hash, chunked(data))
  await writeFile(blockPath(root, hash), bytes(500_000, 12))
  target = blockPath(root, hash)
  let put: Promise<unknown> | undefined
  onRename = async () => {
    events.length = 0
    put = volume.write(hash, chunked(data)).then((r) => events.push(`put ${r.outcome}`))
    await atLock
    // An unlocked commit would look at the block now, inside the quarantine: give it time to show (its fsync may be slow on a busy disk).
    let timer: NodeJS.Timeout | undefined
    await Promise.race([commitStarted, new Promise((r) => (timer = setTimeout(r, 2000)))])
    clearTimeout(timer)
  }
  const report = await new Scrubber({ mounts: () => [mountOf(volume)], rateMBps: 0, logger: silent }).scrubOnce()
  await put
  t.match(report, { corrupt_found: 1, quarantined: 1 })
  t.equal(events[0], 'quarantine rename', 'the PUT looked at the block only after the quarantine let go of the lock')
  t.ok(events.includes('stat block'), 'then it committed')
  t.equal(events.at(-1), 'put written')
  const got = await drain((await volume.read(hash)).stream)
  t.ok(got.error === undefined && got.data.equals(data), 'the good copy is live')
  const quarantined = readdirSync(path.dirname(target)).filter((n) => n.includes('.quarantine.'))
  t.equal(quarantined.length, 1, 'the bad copy is in quarantine')
  t.ok(readFileSync(path.join(path.dirname(target), quarantined[0]!)).equals(bytes(500_000, 12)), 'holding the bad bytes')
})

t.test('scrubber: reads are paced to scrubRate on the injected clock', async (t) => {
  const volume = createMemoryVolume({ uuid: 'zzzzz-nyw5e-000000000000000' })
  const blocks = Array.from({ length: 12 }, (_, i) => bytes(SIZES[i % SIZES.length] as number, 50 + i))
  for (const data of blocks) await volume.write(md5(data), chunked(data))
  const total = blocks.reduce((n, b) => n + b.length, 0)
  const clock = virtualClock()
  const rate = 2 // MB/s
  const samples: Array<{ at: number; bytes: number }> = []
  const scrubber = new Scrubber({
    mounts: () => [mountOf(volume)],
    rateMBps: rate,
    logger: silent,
    clock: {
      now: clock.now,
      sleep: async (ms, signal) => {
        samples.push({ at: clock.elapsed(), bytes: scrubber.status().current?.bytes_read ?? 0 })
        await clock.sleep(ms, signal)
      },
    },
  })
  const report = await scrubber.scrubOnce()
  t.equal(report.bytes_read, total, 'every byte read')
  const chunk = 1024 * 1024
  const perTick = new Map<number, number>()
  let last = 0
  for (const s of samples) {
    t.ok(s.bytes <= (rate * MB * s.at) / 1000 + chunk, `by ${s.at} ms at most rate × time + one chunk (${s.bytes})`)
    const tick = Math.floor(s.at / 1000)
    perTick.set(tick, (perTick.get(tick) ?? 0) + s.bytes - last)
    last = s.bytes
  }
  t.ok([...perTick.values()].every((n) => n <= rate * MB + chunk), `bytes per virtual second: ${[...perTick.values()].join(', ')}`)
  const ideal = ((total - chunk) / (rate * MB)) * 1000
  t.ok(clock.elapsed() >= ideal, `the pass took ${clock.elapsed()} virtual ms, at least ${Math.round(ideal)}`)
  t.ok(clock.elapsed() <= (total / (rate * MB)) * 1000 + 1, 'and no longer than the rate requires')
})

t.test('scrubber: the rate limiter never waits at rate 0 and does not save idle time for a burst', async (t) => {
  const clock = virtualClock()
  const unlimited = new RateLimiter(0, clock)
  for (let i = 0; i < 10; i++) await unlimited.take(10 * MB)
  t.same(clock.sleeps, [], 'rate 0: no sleep')
  const limited = new RateLimiter(MB, clock)
  await limited.take(MB)
  t.same(clock.sleeps, [], 'the first take goes at once')
  await limited.take(MB)
  t.same(clock.sleeps, [1000], 'the second waits for the first one’s second')
  await clock.sleep(60_000)
  clock.sleeps.length = 0
  await limited.take(MB)
  await limited.take(MB)
  t.same(clock.sleeps, [1000], 'after a minute idle, still one MB per second')
})

t.test('scrubber: a keepstore with scrubRate scrubs periodically and stops on close', async (t) => {
  let waiting!: () => void
  const idle = new Promise<void>((resolve) => (waiting = resolve))
  let go!: () => void
  const ready = new Promise<void>((resolve) => (go = resolve))
  const sleeps: number[] = []
  let now = 1_700_000_000_000
  const scrubClock: ScrubClock = {
    now: () => now,
    sleep: (ms, signal) => {
      sleeps.push(ms)
      if (ms < 3600_000) {
        now += ms
        return ready // the initial delay ends when the test has stored its block
      }
      waiting() // the pause between passes: stay here until close() aborts it
      return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason), { once: true }))
    },
  }
  const dir = t.testdir()
  const config = clusterConfig(dir, await freePorts(1), { keepstore: { scrubRate: 5 } })
  const ks = await startKeepstore(config, { logger: silent, port: 0, scrubClock })
  const volume = ks.keepstore.mounts[0]!.volume as ReturnType<typeof createMemoryVolume>
  const data = bytes(10_000, 3)
  await volume.write(md5(data), chunked(data))
  volume.corruptForTest(md5(data))
  go()
  await idle
  const status = JSON.parse((await call(ks.url, 'GET', '/status', { token: ADMIN_TOKEN })).text).scrub
  t.match(status, { rate_mb_per_s: 5, passes: 1, last_run: { corrupt_found: 1, quarantined: 1, complete: true } }, 'one pass ran on its own')
  t.equal(sleeps[0], 60_000, 'after the initial delay')
  t.same(await collect(volume.index('')), [], 'the corrupt block is gone from the index')
  await ks.close()
  t.pass('close() ended the pause between passes')
})

t.test('bin/keepstore --scrub-once: scrubs without serving, exit 0 when clean and 4 after quarantining', async (t) => {
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
  const dir = t.testdir({ disk0: {} })
  const file = path.join(dir, 'cluster.yml')
  await writeFile(
    file,
    `cluster:
  id: zzzzz
  systemRootToken: ${ADMIN_TOKEN}
  blobSigningKey: ${SIGNING_KEY}
keepstores:
  - uuid: zzzzz-bi6l4-000000000000000
    url: http://127.0.0.1:1
    volumes:
      - uuid: zzzzz-nyw5e-000000000000000
        root: disk0
`,
  )
  const root = path.join(dir, 'disk0')
  const volume = createDirectoryVolume({ uuid: 'zzzzz-nyw5e-000000000000000', root })
  await volume.open()
  const blocks = Array.from({ length: 6 }, (_, i) => bytes(SIZES[i] as number, 70 + i))
  for (const data of blocks) await volume.write(md5(data), chunked(data))
  const run = (): Promise<{ code: number | null; stdout: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(repo, 'bin/keepstore'), '--config', file, '--scrub-once', '--log-level', 'warn'], {
        stdio: ['ignore', 'pipe', 'ignore'],
        env: { ...process.env, NODE_OPTIONS: '' },
      })
      let stdout = ''
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
      // 'close', not 'exit': stdout may still hold the last lines when the process has exited.
      child.on('close', (code) => resolve({ code, stdout }))
    })
  const clean = await run()
  t.equal(clean.code, 0, 'clean: exit 0')
  t.match(clean.stdout, /^scrub: 1 volume\(s\), 6 blocks checked, \d+ bytes read, 0 corrupt, 0 quarantined, 0 errors$/m)
  await writeFile(blockPath(root, md5(blocks[1]!)), 'rot')
  await writeFile(blockPath(root, md5(blocks[4]!)), bytes(SIZES[4] as number, 0))
  const dirty = await run()
  t.equal(dirty.code, 4, 'corruption found: exit 4')
  // The summary is one line of its own; the audit log lines may come before or after it.
  t.match(dirty.stdout, /^scrub: 1 volume\(s\), 6 blocks checked, \d+ bytes read, 2 corrupt, 2 quarantined, 0 errors$/m)
  const lines = dirty.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { audit?: string; hash?: string })
  t.same(lines.filter((l) => l.audit === 'quarantine').map((l) => l.hash).sort(), [md5(blocks[1]!), md5(blocks[4]!)].sort(), 'audit lines name both')
  t.same((await collect(volume.index(''))).length, 4, 'the index lists the four good blocks')
})
