import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { type RunningKeepstore, startKeepstore } from '../../keepstore/server.js'
import type { FsOp } from '../../keepstore/volumes/directory-volume.js'
import { createLogger } from '../../shared/logger.js'
import { adminJson, getBlock, getIndex, putBlock } from '../helpers/block-client.js'
import { clusterConfig, freePorts } from '../helpers/cluster.js'
import { figure, isSoak, progress } from '../helpers/soak.js'
import { auditVolume } from '../helpers/volume-audit.js'
import { md5 } from '../helpers/volume-suite.js'

const noSpace = (): Error => Object.assign(new Error('injected ENOSPC'), { code: 'ENOSPC' })

/** An in-process keepstore on one directory volume under `dir`, with a fault hook and a clock the test drives. */
async function start(t: Test, dir: string, options: { faults?: (op: FsOp, p: string) => void; now?: () => number; stateDir?: string } = {}) {
  const [port] = await freePorts(1)
  const config = clusterConfig(dir, [port!], {
    volumes: [{ driver: 'directory' }],
    cluster: { blobSigning: false },
    keepstore: { minFreeSpace: 0, ...(options.stateDir ? { stateDir: options.stateDir } : {}) },
  })
  const root = config.keepstores[0]!.volumes[0]!.root!
  mkdirSync(root, { recursive: true })
  const ks: RunningKeepstore = await startKeepstore(config, {
    logger: createLogger({ level: 'silent' }),
    shutdownGraceMs: 1000,
    ...(options.faults ? { faults: options.faults } : {}),
    ...(options.now ? { now: options.now } : {}),
  })
  t.teardown(() => ks.close())
  return { ks, url: ks.url, root }
}

async function putAll(url: string, blocks: Buffer[]): Promise<number[]> {
  const statuses: number[] = []
  for (const b of blocks) statuses.push((await putBlock(url, b)).status)
  return statuses
}

t.test('keepstore: ENOSPC on write or fsync → PUT 507, no partial file, old blocks readable, writes resume once space is back', async (t) => {
  let clock = Date.parse('2026-12-01T00:00:00Z')
  const full = new Set<FsOp>()
  const { url, root } = await start(t, t.testdir(), {
    now: () => clock,
    faults: (op, p) => {
      // Only block writes fail: the temp file's data and its fsync.
      if (full.has(op) && path.basename(p).includes('.tmp-')) throw noSpace()
    },
  })
  const old = Array.from({ length: 5 }, (_, i) => randomBytes(1000 * (i + 1)))
  t.same(await putAll(url, old), [200, 200, 200, 200, 200], 'five blocks stored before the disk fills')

  for (const op of ['write', 'fsync'] as const) {
    full.add(op)
    const block = randomBytes(300_000)
    t.equal((await putBlock(url, block)).status, 507, `ENOSPC on ${op}: PUT 507`)
    const audit = auditVolume(root)
    t.same(audit.temps, [], `${op}: no temp file left`)
    t.notOk(audit.blocks.has(md5(block)), `${op}: no file for the block`)
    t.same(audit.bad, [], `${op}: nothing partial`)
    t.equal((await getBlock(url, md5(block), block.length)).status, 404, `${op}: GET 404`)
    const reads = await Promise.all(old.map((b) => getBlock(url, md5(b), b.length)))
    t.ok(reads.every((r) => r.verified), `${op}: the old blocks still read back`)
    const status = (await adminJson(url, 'GET', '/status')).json as { volumes: Array<{ state: string }> }
    t.ok(status.volumes.length === 1, `${op}: /status answers`)
    full.delete(op)
    // The mount re-reads free space (statfs) once its last reading is stale; then writes resume.
    clock += 60_000
    const again = randomBytes(300_000)
    t.equal((await putBlock(url, again)).status, 200, `${op}: once space is back, PUT 200`)
    t.ok((await getBlock(url, md5(again), again.length)).verified, `${op}: and it reads back`)
  }
  t.equal((await getIndex(url)).blocks.size, 7, 'the index lists the 5 old and the 2 new blocks, nothing else')
})

/** Mounts an 8 MiB tmpfs on a fresh directory: its path, or why it cannot. */
function mountTmpfs(): { dir: string } | { why: string } {
  if (process.getuid?.() !== 0) return { why: 'needs root: mount -t tmpfs' }
  const dir = mkdtempSync(path.join(tmpdir(), 'keep-tmpfs-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir], { stdio: 'pipe' })
    return { dir }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    const stderr = String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n')[0]
    return { why: `needs mount permission: mount -t tmpfs failed (${stderr})` }
  }
}

const tmpfs = mountTmpfs()

t.test('keepstore on a real 8 MiB tmpfs: filled until 507, nothing partial, writes resume once space is freed', { skip: 'why' in tmpfs ? tmpfs.why : false }, async (t) => {
  if (!('dir' in tmpfs)) return
  const { dir } = tmpfs
  let ks: RunningKeepstore | undefined
  t.teardown(async () => {
    await ks?.close()
    execFileSync('umount', [dir])
    rmSync(dir, { recursive: true, force: true })
  })
  // Ballast the operator will delete to free space.
  writeFileSync(path.join(dir, 'ballast'), Buffer.alloc(2 * 1024 * 1024))
  const started = await start(t, dir, { stateDir: t.testdir() })
  ks = started.ks
  const { url, root } = started
  const acked: Buffer[] = []
  let refused = 0
  for (let i = 0; i < 200 && refused === 0; i++) {
    const block = randomBytes(isSoak() ? 64 * 1024 + Math.floor(Math.random() * 512 * 1024) : 256 * 1024)
    const status = (await putBlock(url, block)).status
    if (status === 200) acked.push(block)
    else if (status === 507) refused++
    else t.fail(`unexpected status ${status}`)
    progress('disk-full fill', acked.length, 32)
  }
  t.equal(refused, 1, `filled: ${acked.length} blocks stored, then 507`)
  const audit = auditVolume(root)
  t.same({ temps: audit.temps, bad: audit.bad }, { temps: [], bad: [] }, 'no temp file, nothing partial')
  t.equal(audit.blocks.size, acked.length, 'exactly the acknowledged blocks are on disk')
  const reads = await Promise.all(acked.map((b) => getBlock(url, md5(b), b.length)))
  t.ok(reads.every((r) => r.verified), 'every stored block reads back')

  rmSync(path.join(dir, 'ballast'))
  // GET /status re-reads free space at once (instead of waiting for the cached reading to age).
  t.equal((await adminJson(url, 'GET', '/status')).status, 200)
  const after = randomBytes(256 * 1024)
  t.equal((await putBlock(url, after)).status, 200, 'space freed: the next PUT is stored')
  t.ok((await getBlock(url, md5(after), after.length)).verified, 'and reads back')
  figure(t, 'disk-full', { stored_until_full: acked.length, refused_507: refused, partial: audit.bad.length, temp_left: audit.temps.length })
})
