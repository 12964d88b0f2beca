import t from 'tap'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { createPullHandler, PULL_TOKEN, type PullWorkerDeps } from '../../keepstore/pull-worker.js'
import { Keepstore } from '../../keepstore/keepstore.js'
import { Mount } from '../../keepstore/mount.js'
import { createMemoryVolume } from '../../keepstore/volumes/memory-volume.js'
import { createSigner } from '../../shared/signer.js'
import { KeepError } from '../../shared/errors.js'
import { silentLogger } from '../../shared/logger.js'
import type { ClusterConfig } from '../../shared/config.js'
import type { PullItem } from '../../shared/worklist-items.js'
import { captureLogger } from '../helpers/cluster.js'

// The pull handler over a real keepstore (one memory volume); only the HTTP client is replaced,
// by a recorder that answers as each test says (the injected edge of PullWorkerDeps).

const md5 = (s: string): string => createHash('md5').update(s).digest('hex')
const DATA = 'pulled bytes'
const HASH = md5(DATA)
const ITEM: PullItem = { locator: `${HASH}+${DATA.length}`, servers: ['http://s1', 'http://s2'] }

const READ_ONLY = 'zzzzz-nyw5e-00000000000000r'

function setup(answer: (server: string, signal: AbortSignal) => Promise<Readable>) {
  const volume = createMemoryVolume({ uuid: 'zzzzz-nyw5e-000000000000000' })
  const mount = new Mount({ volume, replication: 1, storageClasses: ['default'], priority: 0, readOnly: false, minFreeSpace: 0 })
  const readOnly = new Mount({ volume: createMemoryVolume({ uuid: READ_ONLY }), replication: 1, storageClasses: ['default'], priority: 0, readOnly: true, minFreeSpace: 0 })
  const keepstore = new Keepstore({ uuid: 'ks', mounts: [mount, readOnly], cluster: { blobTrash: true, blobSigningTTLSeconds: 3600 } as ClusterConfig, logger: silentLogger() })
  const logs: object[] = []
  const calls: Array<{ server: string; locator: string; token: string | undefined }> = []
  const bodies: Readable[] = []
  const failures: string[] = []
  const bytes: number[] = []
  const dropped: PullItem[] = []
  const deps: PullWorkerDeps = {
    keepstore,
    signer: createSigner({ key: 'k'.repeat(32), ttlSeconds: 3600, maxClockSkewSeconds: 0 }),
    client: {
      async getBlock(server, locator, options = {}) {
        calls.push({ server, locator, token: options.token })
        const body = await answer(server, options.signal!)
        bodies.push(body)
        return body
      },
    },
    logger: captureLogger(logs),
    dropDuplicates: async (item) => void dropped.push(item),
    onBytes: (n) => void bytes.push(n),
    onFailure: (reason) => void failures.push(reason),
  }
  return { handle: createPullHandler(deps), volume, logs, calls, bodies, failures, bytes, dropped }
}

const ok = async (): Promise<Readable> => Readable.from([Buffer.from(DATA)])

t.test('pull worker: a transfer counts its bytes, drops duplicates, logs the mount as null when none was named', async (t) => {
  const s = setup(ok)
  t.equal(await s.handle(ITEM, { signal: new AbortController().signal }), 'done')
  t.same(s.calls.map((c) => c.server), ['http://s1'], 'the first server only')
  t.match(s.calls[0]!.locator, new RegExp(`^${HASH}\\+${DATA.length}\\+A[0-9a-f]{40}@[0-9a-f]{8}$`), 'a signed locator')
  t.equal(s.calls[0]!.token, PULL_TOKEN)
  t.same(s.bytes, [DATA.length], 'the size went to onBytes once')
  t.same(s.dropped, [ITEM])
  const entry = s.logs.find((l) => (l as { msg?: string }).msg === 'pulled block') as { mount?: unknown } | undefined
  t.match(entry, { hash: HASH, server: 'http://s1', bytes: DATA.length })
  t.equal(entry?.mount, null, 'mount: null, not left out')
  const named = setup(ok)
  t.equal(await named.handle({ ...ITEM, mount_uuid: 'zzzzz-nyw5e-000000000000000' }, { signal: new AbortController().signal }), 'done')
  t.equal((named.logs.find((l) => (l as { msg?: string }).msg === 'pulled block') as { mount?: unknown } | undefined)?.mount, 'zzzzz-nyw5e-000000000000000', 'a named mount is logged')
  t.ok((await s.volume.stat(HASH)).size === DATA.length, 'the block is stored')
})

t.test('pull worker: every server failing → failed, one reason per server, failure codes counted (no code → "error")', async (t) => {
  const s = setup(async (server) => {
    if (server === 'http://s1') throw new KeepError('KEEP_UNAVAILABLE', '500 boom')
    throw new Error('no code here')
  })
  t.equal(await s.handle(ITEM, { signal: new AbortController().signal }), 'failed')
  t.same(s.calls.map((c) => c.server), ['http://s1', 'http://s2'], 'each server once, in order')
  t.same(s.failures, ['KEEP_UNAVAILABLE', 'error'])
  t.same(s.bytes, [])
  t.same(s.dropped, [], 'nothing dropped after a failure')
  const entry = s.logs.find((l) => (l as { msg?: string }).msg === 'pull failed on every server') as { servers: string[]; reasons: string[] } | undefined
  t.same(entry?.servers, ITEM.servers)
  t.equal(entry?.reasons.length, 2)
  t.match(entry?.reasons[0], /^http:\/\/s1: KEEP_UNAVAILABLE /, 'a reason names the server and the code')
})

t.test('pull worker: bytes that fail their MD5 are not stored and the body is destroyed; the next server is tried', async (t) => {
  let first = true
  const s = setup(async () => {
    if (first) {
      first = false
      return Readable.from([Buffer.from(DATA.toUpperCase())])
    }
    return ok()
  })
  t.equal(await s.handle(ITEM, { signal: new AbortController().signal }), 'done')
  t.equal(s.calls.length, 2)
  t.ok(s.bodies.every((b) => b.destroyed), 'every response body was released')
  t.same(s.failures, ['KEEP_HASH_MISMATCH'])
})

t.test('pull worker: a closing worklist (aborted signal) tries no further server', async (t) => {
  const ac = new AbortController()
  const s = setup(async (_server, signal) => {
    ac.abort()
    throw signal.reason
  })
  t.equal(await s.handle(ITEM, { signal: ac.signal }), 'failed')
  t.same(s.calls.map((c) => c.server), ['http://s1'], 'the second server was never asked')
})

t.test('pull worker: a target whose write fails before reading fails the item and releases the unread body', async (t) => {
  const s = setup(async () => Readable.from([Buffer.from(DATA.slice(0, 4)), Buffer.from(DATA.slice(4))]))
  s.volume.write = async () => {
    throw new KeepError('KEEP_IO', 'volume zzzzz-nyw5e-000000000000000: open failed: EIO')
  }
  t.equal(await s.handle({ ...ITEM, mount_uuid: 'zzzzz-nyw5e-000000000000000' }, { signal: new AbortController().signal }), 'failed')
  t.equal(s.bodies.length, 2, 'both servers were tried')
  t.ok(s.bodies.every((b) => b.destroyed), 'no response body was left open')
  t.same(s.failures, ['KEEP_IO', 'KEEP_IO'])
})

t.test('pull worker, as Keep ignores a pull item for a read-only mount: it fails at once (KEEP_READ_ONLY), no server asked', async (t) => {
  const s = setup(ok)
  await t.rejects(s.handle({ ...ITEM, mount_uuid: READ_ONLY }, { signal: new AbortController().signal }), { code: 'KEEP_READ_ONLY' })
  t.same(s.calls, [], 'nothing was fetched for a write that cannot happen')
  await t.rejects(s.handle({ ...ITEM, mount_uuid: 'zzzzz-nyw5e-00000000000000x' }, { signal: new AbortController().signal }), { code: 'KEEP_NOT_FOUND' }, 'an unknown mount (a list from before a config change) fails too')
})
