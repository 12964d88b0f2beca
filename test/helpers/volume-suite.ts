import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { Test } from 'tap'
import { KeepError } from '../../shared/errors.js'
import { MAX_BLOCK_SIZE, type BlockStat, type PrefixDigest, type Volume } from '../../keepstore/volumes/volume.js'
import { PREFIXES } from '../../keepstore/volumes/prefix-digests.js'
import { formatIndexLine } from '../../shared/index-format.js'

export interface VolumeSuiteOptions {
  readOnly?: boolean
  allowTrashWhenReadOnly?: boolean
  now?: () => bigint
}

/** A fresh, opened volume (torn down with `t`) and a way to rot one stored block. */
export type VolumeFactory = (
  t: Test,
  opts?: VolumeSuiteOptions,
) => Promise<{ volume: Volume; corrupt(hash: string): Promise<void> }>

const NS = 1_000_000_000n
/** Whole seconds: every file system stores them exactly. */
const T1 = 1_700_000_000n * NS
const T2 = T1 + 5n * NS

/** The Wang/Yu pair: two different 128-byte messages with one MD5. */
export const COLLISION_HASH = '79054025255fb1a26e4bc422aef54eb4'
export const COLLISION_A = Buffer.from(
  'd131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f8955ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5bd8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70',
  'hex',
)
export const COLLISION_B = Buffer.from(
  'd131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f8955ad340609f4b30283e4888325f1415a085125e8f7cdc99fd91dbd7280373c5bd8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70',
  'hex',
)

export const md5 = (data: Uint8Array): string => createHash('md5').update(data).digest('hex')

/** `size` deterministic bytes that differ with `seed`. */
export function bytes(size: number, seed = 0): Buffer {
  const buf = Buffer.allocUnsafe(size)
  let x = (seed * 2654435761 + 1) >>> 0
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    buf[i] = x >>> 24
  }
  return buf
}

/** mulberry32: a small seeded PRNG, so a failing run can be replayed by seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** `data` as a body that arrives in `chunkSize` pieces. */
export async function* chunked(data: Buffer, chunkSize = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += chunkSize) yield data.subarray(i, i + chunkSize)
}

/** Reads a stream to its end; on failure reports what arrived before the error. */
export async function drain(stream: Readable): Promise<{ data: Buffer; chunks: number; error?: unknown }> {
  const parts: Buffer[] = []
  try {
    for await (const part of stream) parts.push(part as Buffer)
    return { data: Buffer.concat(parts), chunks: parts.length }
  } catch (error) {
    return { data: Buffer.concat(parts), chunks: parts.length, error }
  }
}

export async function collect<T = BlockStat>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const s of it) out.push(s)
  return out
}

/** A clock the test moves by hand. */
function manualClock(start = T1): { now: () => bigint; set(ns: bigint): void } {
  let current = start
  return { now: () => current, set: (ns) => (current = ns) }
}

/**
 * The one conformance suite: every driver runs it with a factory that makes a
 * fresh volume. Tests are named `<name>: <sentence>`.
 */
export function volumeSuite(t: Test, name: string, factory: VolumeFactory): void {
  const put = (v: Volume, data: Buffer, chunkSize?: number) => v.write(md5(data), chunked(data, chunkSize))

  t.test(`${name}: written blocks read back byte for byte`, async (t) => {
    const { volume } = await factory(t)
    const rows = [
      { label: 'empty block', data: Buffer.alloc(0) },
      { label: 'one byte', data: Buffer.from('x') },
      { label: '1 MiB', data: bytes(1024 * 1024, 1) },
      { label: '3 MiB in odd chunks', data: bytes(3 * 1024 * 1024 + 17, 2), chunkSize: 7 * 1024 + 3 },
    ]
    for (const row of rows) {
      const hash = md5(row.data)
      const w = await put(volume, row.data, row.chunkSize)
      t.match(w, { hash, size: row.data.length, outcome: 'written' }, `${row.label}: written`)
      const r = await volume.read(hash)
      t.match(r, { hash, size: row.data.length, mtime: w.mtime }, `${row.label}: read reports size and mtime`)
      const got = await drain(r.stream)
      t.equal(got.error, undefined, `${row.label}: stream ends cleanly`)
      t.ok(got.data.equals(row.data), `${row.label}: same bytes`)
      if (row.data.length > 1024 * 1024) t.ok(got.chunks > 1, `${row.label}: arrives in several chunks`)
      t.same(await volume.stat(hash), { hash, size: row.data.length, mtime: w.mtime }, `${row.label}: stat agrees`)
    }
  })

  t.test(`${name}: a body that fails its checks leaves nothing behind`, async (t) => {
    const { volume } = await factory(t)
    const data = bytes(100_000, 3)
    const hash = md5(data)
    const rows = [
      { label: 'other bytes', hash, body: bytes(100_000, 4), opts: {}, code: 'KEEP_HASH_MISMATCH' },
      { label: 'shorter than the hint', hash, body: data, opts: { expectedSize: 100_001 }, code: 'KEEP_SIZE_MISMATCH' },
      { label: 'longer than the hint', hash, body: data, opts: { expectedSize: 99_999 }, code: 'KEEP_SIZE_MISMATCH' },
    ]
    for (const row of rows) {
      await t.rejects(volume.write(row.hash, chunked(row.body, 8192), row.opts), { code: row.code }, row.label)
      await t.rejects(volume.stat(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, `${row.label}: not stored`)
    }
    t.same(await collect(volume.index('')), [], 'index is empty')
    const ok = await volume.write(hash, chunked(data), { expectedSize: data.length })
    t.equal(ok.outcome, 'written', 'the right body with the right hint is accepted')
  })

  t.test(`${name}: a body over 64 MiB fails KEEP_TOO_LARGE`, async (t) => {
    const { volume } = await factory(t)
    const mib = bytes(1024 * 1024, 5)
    async function* oversized(): AsyncGenerator<Buffer> {
      for (let i = 0; i < MAX_BLOCK_SIZE / mib.length; i++) yield mib
      yield Buffer.from('!')
    }
    await t.rejects(volume.write('0123456789abcdef0123456789abcdef', oversized()), { code: 'KEEP_TOO_LARGE' })
    t.same(await collect(volume.index('')), [], 'nothing is stored')
  })

  t.test(`${name}: rewriting identical bytes only touches the block`, async (t) => {
    const clock = manualClock()
    const { volume } = await factory(t, { now: clock.now })
    const data = bytes(5000, 6)
    const first = await put(volume, data)
    t.equal(first.mtime, T1, 'first write takes the clock')
    clock.set(T2)
    const second = await put(volume, data)
    t.match(second, { outcome: 'touched', size: data.length, mtime: T2 })
    t.same(await collect(volume.index('')), [{ hash: md5(data), size: data.length, mtime: T2 }], 'one block, new mtime')
  })

  t.test(`${name}: different bytes with the same MD5 fail KEEP_HASH_COLLISION`, async (t) => {
    const { volume } = await factory(t)
    t.equal(md5(COLLISION_A), COLLISION_HASH)
    t.equal(md5(COLLISION_B), COLLISION_HASH)
    await volume.write(COLLISION_HASH, chunked(COLLISION_A))
    await t.rejects(volume.write(COLLISION_HASH, chunked(COLLISION_B)), { code: 'KEEP_HASH_COLLISION' })
    const got = await drain((await volume.read(COLLISION_HASH)).stream)
    t.ok(got.data.equals(COLLISION_A), 'the first copy is kept')
  })

  t.test(`${name}: corrupt stored bytes are never served whole, and a good write repairs them`, async (t) => {
    const { volume, corrupt } = await factory(t)
    const rows = [
      { label: 'one-chunk block', data: bytes(1000, 7) },
      { label: 'multi-chunk block', data: bytes(2 * 1024 * 1024 + 5, 8) },
    ]
    for (const row of rows) {
      const hash = md5(row.data)
      await put(volume, row.data)
      await corrupt(hash)
      t.match(await volume.stat(hash), { hash }, `${row.label}: stat still answers`)
      const r = await volume.read(hash)
      const got = await drain(r.stream)
      t.match(got.error, { code: 'KEEP_CORRUPT' }, `${row.label}: stream fails KEEP_CORRUPT`)
      t.ok(got.data.length < r.size, `${row.label}: body stops short (${got.data.length} of ${r.size})`)
      const repaired = await put(volume, row.data)
      t.equal(repaired.outcome, 'written', `${row.label}: rewrite replaces the bad copy`)
      const again = await drain((await volume.read(hash)).stream)
      t.ok(again.error === undefined && again.data.equals(row.data), `${row.label}: reads back intact`)
    }
  })

  t.test(`${name}: touch sets mtime to now`, async (t) => {
    const clock = manualClock()
    const { volume } = await factory(t, { now: clock.now })
    const data = bytes(10, 9)
    const hash = md5(data)
    await put(volume, data)
    clock.set(T2)
    t.same(await volume.touch(hash), { hash, size: 10, mtime: T2 }, 'touch reports the new mtime')
    t.equal((await volume.stat(hash)).mtime, T2, 'stat sees it')
    t.equal((await collect(volume.index(hash)))[0]?.mtime, T2, 'index sees it')
  })

  t.test(`${name}: mtimes are exact nanosecond bigints beyond 2^53`, async (t) => {
    const { volume } = await factory(t)
    const data = bytes(10, 10)
    const hash = md5(data)
    const w = await put(volume, data)
    const mtime = (await volume.stat(hash)).mtime
    t.equal(typeof mtime, 'bigint')
    t.ok(mtime > 2n ** 53n, 'a nanosecond timestamp')
    t.equal(w.mtime, mtime, 'write result agrees with stat')
    const r = await volume.read(hash)
    r.stream.destroy()
    t.equal(r.mtime, mtime, 'read agrees')
    t.equal((await collect(volume.index('')))[0]?.mtime, mtime, 'index agrees')
    const guards = [mtime + 1n, mtime - 1n]
    for (const ifMtime of guards) t.equal(await volume.trash(hash, { ifMtime, deadline: 0 }), false, `off by ${ifMtime - mtime} ns refuses`)
    t.equal(await volume.trash(hash, { ifMtime: mtime, deadline: 0 }), true, 'the exact mtime trashes')
  })

  t.test(`${name}: trash hides a block until emptied, untrash brings it back`, async (t) => {
    const { volume } = await factory(t)
    const data = bytes(3000, 11)
    const hash = md5(data)
    const { mtime } = await put(volume, data)
    t.equal(await volume.trash(hash, { deadline: 2000 }), true)
    await t.rejects(volume.read(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'read misses it')
    await t.rejects(volume.stat(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'stat misses it')
    t.same(await collect(volume.index('')), [], 'index misses it')
    t.equal(await volume.emptyTrash(1999), 0, 'before the deadline nothing is deleted')
    t.same(await volume.untrash(hash), { hash, size: data.length, mtime }, 'untrash restores it with its mtime')
    t.ok((await drain((await volume.read(hash)).stream)).data.equals(data), 'and its bytes')
    t.equal(await volume.trash(hash, { deadline: 2000 }), true)
    t.equal(await volume.emptyTrash(2000), 1, 'at the deadline it is deleted')
    await t.rejects(volume.untrash(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'then untrash finds nothing')
  })

  t.test(`${name}: a write after trash makes a live copy that emptying leaves alone`, async (t) => {
    const { volume } = await factory(t)
    const data = bytes(3000, 12)
    const hash = md5(data)
    await put(volume, data)
    await volume.trash(hash, { deadline: 100 })
    t.equal((await put(volume, data)).outcome, 'written', 'the trashed copy does not count as stored')
    t.equal(await volume.emptyTrash(100), 1, 'the trashed copy is deleted')
    t.ok((await drain((await volume.read(hash)).stream)).data.equals(data), 'the live copy stays')
  })

  t.test(`${name}: untrash restores the newest copy and keeps a live one`, async (t) => {
    const clock = manualClock()
    const { volume } = await factory(t, { now: clock.now })
    const data = bytes(700, 13)
    const hash = md5(data)
    await put(volume, data)
    await volume.trash(hash, { deadline: 500 })
    clock.set(T2)
    await put(volume, data)
    await volume.trash(hash, { deadline: 900 })
    clock.set(T2 + NS)
    await put(volume, data)
    await volume.trash(hash, { deadline: 900 })
    t.equal((await volume.untrash(hash)).mtime, T2 + NS, 'latest deadline, then newest mtime wins')
    t.equal((await volume.untrash(hash)).mtime, T2 + NS, 'with a live copy, untrash keeps it')
    t.equal(await volume.emptyTrash(10_000), 2, 'the other copies stay trashed until emptied')
    t.equal((await volume.stat(hash)).mtime, T2 + NS, 'the live copy survives')
  })

  t.test(`${name}: trash guards refuse without changing anything`, async (t) => {
    const { volume } = await factory(t)
    const data = bytes(40, 14)
    const hash = md5(data)
    const { mtime } = await put(volume, data)
    const refused = [
      { label: 'mtime differs', opts: { ifMtime: mtime + 1000n, deadline: 0 } },
      { label: 'block is newer than the limit', opts: { notNewerThan: mtime - 1n, deadline: 0 } },
      { label: 'one guard of two fails', opts: { ifMtime: mtime, notNewerThan: mtime - 1n, deadline: 0 } },
    ]
    for (const row of refused) {
      t.equal(await volume.trash(hash, row.opts), false, row.label)
      t.equal((await volume.stat(hash)).mtime, mtime, `${row.label}: still live`)
    }
    t.equal(await volume.trash(hash, { ifMtime: mtime, notNewerThan: mtime, deadline: 0 }), true, 'an old enough block goes')
  })

  t.test(`${name}: index lists live blocks by prefix in hash order`, async (t) => {
    const { volume } = await factory(t)
    const blocks = Array.from({ length: 48 }, (_, i) => bytes(i, 100 + i))
    for (const b of blocks) await put(volume, b)
    const all = (await collect(volume.index(''))).map((s) => s.hash)
    const want = blocks.map(md5).sort()
    t.same(all, want, 'everything, sorted')
    const sample = want[7] as string
    for (const prefix of [sample.slice(0, 1), sample.slice(0, 2), sample.slice(0, 3), sample.slice(0, 4), sample]) {
      const got = await collect(volume.index(prefix))
      t.same(got.map((s) => s.hash), want.filter((h) => h.startsWith(prefix)), `prefix ${prefix.length} chars`)
    }
    const [entry] = await collect(volume.index(sample))
    const size = blocks.find((b) => md5(b) === sample)?.length
    t.same(entry, { hash: sample, size, mtime: (await volume.stat(sample)).mtime }, 'entries carry size and mtime')
    t.same(await collect(volume.index('f'.repeat(32))), [], 'an absent full hash lists nothing')
  })

  t.test(`${name}: digests: 000…fff, each the count and sha256 of exactly the lines index(prefix) lists`, async (t) => {
    const clock = manualClock()
    const { volume } = await factory(t, { now: clock.now })
    const blocks = Array.from({ length: 40 }, (_, i) => bytes(i, 300 + i))
    for (const b of blocks) await put(volume, b)
    const expected = async (): Promise<PrefixDigest[]> => {
      const all = await collect(volume.index(''))
      const used = new Set(all.map((e) => e.hash.slice(0, 3)))
      const out: PrefixDigest[] = []
      for (const prefix of PREFIXES) {
        // Each prefix as index(prefix) itself lists it (the empty ones from the full listing).
        const lines = used.has(prefix) ? await collect(volume.index(prefix)) : []
        const text = lines.map(formatIndexLine).join('')
        out.push({ prefix, blocks: lines.length, sha256: createHash('sha256').update(text).digest('hex') })
      }
      return out
    }
    const first = await volume.digests()
    t.same(first.map((d) => d.prefix), PREFIXES, 'one entry per prefix, in order')
    t.same(first, await expected(), 'each prefix: its block count and the sha256 of its index lines')
    t.equal(first.reduce((n, d) => n + d.blocks, 0), blocks.length, 'every block counted once')
    const [trashed, touched] = blocks.map(md5).sort()
    await volume.trash(trashed as string, { deadline: 0 })
    clock.set(T2)
    await volume.touch(touched as string)
    const second = await volume.digests()
    t.same(second, await expected(), 'after a trash and a touch: still exactly the index')
    const changed = second.filter((d, i) => d.sha256 !== first[i]?.sha256).map((d) => d.prefix)
    t.same(changed, [...new Set([trashed, touched].map((h) => (h as string).slice(0, 3)))].sort(), 'only their prefixes changed')
  })

  t.test(`${name}: absent blocks fail KEEP_BLOCK_NOT_FOUND`, async (t) => {
    const { volume } = await factory(t)
    const hash = md5(Buffer.from('nobody wrote this'))
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['read', () => volume.read(hash)],
      ['stat', () => volume.stat(hash)],
      ['touch', () => volume.touch(hash)],
      ['trash', () => volume.trash(hash, { deadline: 0 })],
      ['untrash', () => volume.untrash(hash)],
    ]
    for (const [label, call] of calls) await t.rejects(call(), { code: 'KEEP_BLOCK_NOT_FOUND' }, label)
    const live = Buffer.from('live, never trashed')
    await put(volume, live)
    await t.rejects(volume.untrash(md5(live)), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'untrash of a never-trashed block')
  })

  t.test(`${name}: a read-only volume refuses every change`, async (t) => {
    const { volume } = await factory(t, { readOnly: true })
    t.equal(volume.readOnly, true)
    const data = Buffer.from('read-only')
    const hash = md5(data)
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['write', () => volume.write(hash, chunked(data))],
      ['touch', () => volume.touch(hash)],
      ['trash', () => volume.trash(hash, { deadline: 0 })],
      ['untrash', () => volume.untrash(hash)],
    ]
    for (const [label, call] of calls) await t.rejects(call(), { code: 'KEEP_READ_ONLY' }, label)
    t.equal(await volume.emptyTrash(Number.MAX_SAFE_INTEGER), 0, 'emptying trash deletes nothing')
    await t.rejects(volume.read(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'reads still work')
  })

  t.test(`${name}: a read-only volume with allowTrashWhenReadOnly (as Keep) lets trash through, nothing else`, async (t) => {
    const { volume } = await factory(t, { readOnly: true, allowTrashWhenReadOnly: true })
    t.match(volume, { readOnly: true, allowTrashWhenReadOnly: true })
    const data = Buffer.from('read-only, trashable')
    const hash = md5(data)
    const refused: Array<[string, () => Promise<unknown>]> = [['write', () => volume.write(hash, chunked(data))], ['touch', () => volume.touch(hash)], ['quarantine', () => volume.quarantine(hash)]]
    for (const [label, call] of refused) {
      await t.rejects(call(), { code: 'KEEP_READ_ONLY' }, `${label} still refused`)
    }
    await t.rejects(volume.trash(hash, { deadline: 0 }), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'trash passes the read-only gate (and finds nothing)')
    await t.rejects(volume.untrash(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'untrash too')
    t.equal(await volume.emptyTrash(Number.MAX_SAFE_INTEGER), 0)
  })

  t.test(`${name}: concurrent writes of one block all succeed and store it once`, async (t) => {
    const { volume } = await factory(t)
    const data = bytes(1024 * 1024 + 3, 15)
    const hash = md5(data)
    const results = await Promise.all(Array.from({ length: 10 }, () => put(volume, data, 100_000)))
    t.ok(results.some((r) => r.outcome === 'written'), 'at least one wrote')
    t.ok(results.every((r) => r.size === data.length), 'all report the size')
    t.same((await collect(volume.index(''))).map((s) => s.hash), [hash], 'one block')
    t.ok((await drain((await volume.read(hash)).stream)).data.equals(data), 'intact')
  })

  t.test(`${name}: an aborted write stores nothing and an aborted read stops`, async (t) => {
    const { volume } = await factory(t)
    const data = bytes(300_000, 16)
    const hash = md5(data)
    const controller = new AbortController()
    async function* body(): AsyncGenerator<Buffer> {
      yield data.subarray(0, 1000)
      controller.abort()
      yield data.subarray(1000)
    }
    await t.rejects(volume.write(hash, body(), { signal: controller.signal }), { code: 'KEEP_TIMEOUT' })
    await t.rejects(volume.stat(hash), { code: 'KEEP_BLOCK_NOT_FOUND' })
    const stalled = new AbortController()
    async function* stalling(): AsyncGenerator<Buffer> {
      yield data.subarray(0, 1000)
      stalled.abort(new KeepError('KEEP_UNAVAILABLE', 'shutting down'))
      await new Promise<never>(() => undefined)
    }
    const write = volume.write(hash, stalling(), { signal: stalled.signal })
    await t.rejects(write, { code: 'KEEP_UNAVAILABLE' }, 'a stalled body is given up; a KeepError reason is kept')
    await t.rejects(volume.stat(hash), { code: 'KEEP_BLOCK_NOT_FOUND' })
    await put(volume, data)
    const reading = new AbortController()
    const r = await volume.read(hash, { signal: reading.signal })
    reading.abort()
    const got = await drain(r.stream)
    t.match(got.error, { name: 'AbortError' }, 'stream fails with the abort')
    t.ok(got.data.length < data.length, 'short of the full body')
  })

  t.test(`${name}: quarantine hides a corrupt copy from every reader until a good write`, async (t) => {
    const { volume, corrupt } = await factory(t)
    const data = bytes(70_000, 17)
    const hash = md5(data)
    await put(volume, data)
    await corrupt(hash)
    t.equal(await volume.quarantine(hash), 'quarantined')
    await t.rejects(volume.read(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'read misses it')
    await t.rejects(volume.stat(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'stat misses it')
    await t.rejects(volume.touch(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'touch misses it')
    await t.rejects(volume.trash(hash, { deadline: 0 }), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'trash misses it')
    await t.rejects(volume.untrash(hash), { code: 'KEEP_BLOCK_NOT_FOUND' }, 'untrash does not bring it back')
    t.same(await collect(volume.index('')), [], 'index misses it')
    t.same(await collect(volume.irregular('')), [], 'it is not reported as irregular either')
    t.equal(await volume.emptyTrash(Number.MAX_SAFE_INTEGER), 0, 'emptying trash neither deletes nor counts it')
    t.equal(await volume.quarantine(hash), 'absent', 'a second quarantine finds nothing')
    t.equal((await put(volume, data)).outcome, 'written', 'a good copy is written afresh')
    const got = await drain((await volume.read(hash)).stream)
    t.ok(got.error === undefined && got.data.equals(data), 'and reads back intact')
  })

  t.test(`${name}: quarantine leaves a good copy exactly as it is`, async (t) => {
    const clock = manualClock()
    const { volume } = await factory(t, { now: clock.now })
    const blocks = [Buffer.alloc(0), bytes(1, 18), bytes(2 * 1024 * 1024 + 1, 19)]
    for (const data of blocks) await put(volume, data)
    const before = await collect(volume.index(''))
    clock.set(T2)
    for (const data of blocks) t.equal(await volume.quarantine(md5(data)), 'good', `${data.length} bytes: good`)
    t.same(await collect(volume.index('')), before, 'index unchanged, mtimes included')
    for (const data of blocks) {
      const got = await drain((await volume.read(md5(data))).stream)
      t.ok(got.error === undefined && got.data.equals(data), `${data.length} bytes: intact`)
    }
  })

  t.test(`${name}: quarantine of an absent or only trashed block changes nothing`, async (t) => {
    const { volume } = await factory(t)
    t.equal(await volume.quarantine(md5(Buffer.from('never written'))), 'absent')
    const data = bytes(500, 20)
    const hash = md5(data)
    await put(volume, data)
    await volume.trash(hash, { deadline: 100 })
    t.equal(await volume.quarantine(hash), 'absent', 'the trashed copy is not live')
    t.match(await volume.untrash(hash), { hash, size: 500 }, 'untrash still restores it')
  })

  t.test(`${name}: a read-only volume refuses quarantine`, async (t) => {
    const { volume } = await factory(t, { readOnly: true })
    await t.rejects(volume.quarantine(md5(Buffer.from('x'))), { code: 'KEEP_READ_ONLY' })
    t.same(await collect(volume.irregular('')), [], 'an empty volume has nothing irregular')
  })

  t.test(`${name}: status reports free and total bytes`, async (t) => {
    const { volume } = await factory(t)
    const s = await volume.status()
    t.ok(Number.isSafeInteger(s.totalBytes) && s.totalBytes > 0, 'total')
    t.ok(Number.isSafeInteger(s.freeBytes) && s.freeBytes >= 0 && s.freeBytes <= s.totalBytes, 'free within total')
  })
}
