import t, { type Test } from 'tap'
import { createHash } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { Keepstore } from '../../keepstore/keepstore.js'
import { Mount } from '../../keepstore/mount.js'
import { type FaultHook, createDirectoryVolume } from '../../keepstore/volumes/directory-volume.js'
import { createMemoryVolume } from '../../keepstore/volumes/memory-volume.js'
import { clusterConfig } from '../helpers/cluster.js'
import { silentLogger } from '../../shared/logger.js'

const md5 = (b: string): string => createHash('md5').update(b).digest('hex')
const UUID = 'zzzzz-nyw5e-000000000000000'
const fault = (code: string): Error => Object.assign(new Error(`simulated ${code}`), { code })

async function* body(s: string): AsyncGenerator<Buffer> {
  yield Buffer.from(s)
}

/** One keepstore over one directory volume whose writes fail (EROFS) while `writes.fail` is set; the clock is the test's. */
async function setup(t: Test): Promise<{ keepstore: Keepstore; mount: Mount; clock: { now: number }; writes: { fail: boolean }; root: string }> {
  const root = t.testdir({})
  const writes = { fail: false }
  const faults: FaultHook = (op) => {
    if (writes.fail && op === 'write') throw fault('EROFS')
  }
  const volume = createDirectoryVolume({ uuid: UUID, root, faults })
  await volume.open()
  const clock = { now: 1_800_000_000_000 }
  const mount = new Mount({ volume, replication: 1, storageClasses: ['default'], priority: 0, readOnly: false, minFreeSpace: 0, now: () => clock.now })
  const keepstore = new Keepstore({ uuid: 'zzzzz-bi6l4-000000000000000', mounts: [mount], cluster: clusterConfig(root, [1]).cluster, logger: silentLogger(), now: () => clock.now })
  return { keepstore, mount, clock, writes, root }
}

async function failWrites(t: Test, keepstore: Keepstore, mount: Mount): Promise<void> {
  for (let i = 0; mount.state !== 'failed'; i++) {
    if (i > 10) throw new Error('the mount never failed')
    await t.rejects(keepstore.put(md5(`w${i}`), body(`w${i}`)), { code: 'KEEP_IO' })
  }
}

t.test('mount: successful reads do not bring back a mount whose writes fail', async (t) => {
  const { keepstore, mount, clock, writes } = await setup(t)
  await keepstore.put(md5('stored'), body('stored'))
  writes.fail = true
  await failWrites(t, keepstore, mount)
  t.equal(mount.state, 'failed')
  for (let i = 0; i < 3; i++) {
    const block = await keepstore.open(md5('stored'))
    block.rest.resume()
    t.same(block.first, Buffer.from('stored'), 'the block still reads')
    await keepstore.head(md5('stored'))
  }
  t.equal(mount.state, 'failed', 'still failed after reads')
  clock.now += 60_000
  // Every writable volume failing → KEEP_IO, 500 (PROTOCOL §3).
  await t.rejects(keepstore.put(md5('new'), body('new')), { code: 'KEEP_IO' }, 'still out of the write rotation: the probe write fails too')
  t.equal(mount.state, 'failed')
})

t.test('mount: a successful probe write brings a failed mount back', async (t) => {
  const { keepstore, mount, clock, writes, root } = await setup(t)
  writes.fail = true
  await failWrites(t, keepstore, mount)
  writes.fail = false
  await t.rejects(keepstore.put(md5('early'), body('early')), { code: 'KEEP_IO' }, 'no probe before the next refresh')
  clock.now += 60_000
  const result = await keepstore.put(md5('after probe'), body('after probe'))
  t.equal(result.replicas, 1, 'the probe passed and the PUT landed')
  t.equal(mount.state, 'ok')
  t.same(readdirSync(root).filter((n) => n.includes('.tmp-')), [], 'the probe file is gone')
})

t.test('volumes: probe() succeeds on a writable volume and fails KEEP_READ_ONLY on a read-only one', async (t) => {
  const root = t.testdir({})
  const dir = createDirectoryVolume({ uuid: UUID, root })
  await dir.open()
  await dir.probe!()
  const memory = createMemoryVolume({ uuid: UUID })
  await memory.open()
  await memory.probe!()
  await t.rejects(createMemoryVolume({ uuid: UUID, readOnly: true }).probe!(), { code: 'KEEP_READ_ONLY' })
  const ro = createDirectoryVolume({ uuid: UUID, root, readOnly: true })
  await ro.open()
  await t.rejects(ro.probe!(), { code: 'KEEP_READ_ONLY' })
  let failing = true
  const broken = createDirectoryVolume({ uuid: UUID, root, faults: (op) => { if (failing && op === 'fsync') throw fault('EIO') } })
  failing = false
  await broken.open()
  failing = true
  await t.rejects(broken.probe!(), { code: 'KEEP_IO' }, 'an fsync failure fails the probe')
})
