import t from 'tap'
import { createHash } from 'node:crypto'
import { getEventListeners } from 'node:events'
import { consumeVerified, createVerifiedStream, type ChunkSource } from '../../../keepstore/volumes/hashing-stream.js'
import { MAX_BLOCK_SIZE } from '../../../keepstore/volumes/volume.js'
import { KeepError } from '../../../shared/errors.js'

const md5 = (...parts: Buffer[]): string => {
  const h = createHash('md5')
  for (const p of parts) h.update(p)
  return h.digest('hex')
}
const flipLast = (hex: string): string => hex.slice(0, -1) + (hex.endsWith('0') ? '1' : '0')

async function* from(chunks: Array<Buffer | Uint8Array>): AsyncGenerator<Buffer | Uint8Array> {
  for (const c of chunks) yield c
}

/** `n` MiB of zeros as one reused 1 MiB chunk, plus `extra` more bytes. */
function mebibytes(n: number, extra = 0): { chunks: Buffer[]; hash: string; size: number } {
  const mib = Buffer.alloc(1024 * 1024)
  const chunks: Buffer[] = Array.from({ length: n }, () => mib)
  if (extra) chunks.push(Buffer.alloc(extra))
  return { chunks, hash: md5(...chunks), size: n * mib.length + extra }
}

t.test('consumeVerified: exactly 64 MiB is a block; one byte more is KEEP_TOO_LARGE before the sink sees it', async (t) => {
  const exact = mebibytes(64)
  let sunk = 0
  t.equal(await consumeVerified(from(exact.chunks), { hash: exact.hash, sink: (c) => void (sunk += c.length) }), MAX_BLOCK_SIZE, 'returns the size')
  t.equal(sunk, MAX_BLOCK_SIZE, 'every byte reached the sink')
  const over = mebibytes(64, 1)
  sunk = 0
  await t.rejects(consumeVerified(from(over.chunks), { hash: over.hash, sink: (c) => void (sunk += c.length) }), { code: 'KEEP_TOO_LARGE' })
  t.equal(sunk, MAX_BLOCK_SIZE, 'the chunk that crossed the limit never reached the sink')
})

t.test('consumeVerified: the size hint is exact — one byte short or long is KEEP_SIZE_MISMATCH', async (t) => {
  const a = Buffer.from('abcd')
  const b = Buffer.from('efgh')
  const hash = md5(a, b)
  t.equal(await consumeVerified(from([a, b]), { hash, expectedSize: 8, sink: () => undefined }), 8)
  const sunk: Buffer[] = []
  await t.rejects(consumeVerified(from([a, b]), { hash, expectedSize: 7, sink: (c) => void sunk.push(c) }), { code: 'KEEP_SIZE_MISMATCH' }, 'hint one byte short')
  t.same(sunk, [a], 'the chunk passing the hint never reached the sink')
  await t.rejects(consumeVerified(from([a, b]), { hash, expectedSize: 9, sink: () => undefined }), { code: 'KEEP_SIZE_MISMATCH' }, 'hint one byte long')
  await t.rejects(consumeVerified(from([]), { hash: md5(), expectedSize: 1, sink: () => undefined }), { code: 'KEEP_SIZE_MISMATCH' }, 'an empty body against hint 1')
  t.equal(await consumeVerified(from([]), { hash: md5(), expectedSize: 0, sink: () => undefined }), 0, 'the empty block')
})

t.test('consumeVerified: one hex digit off in the hash is KEEP_HASH_MISMATCH', async (t) => {
  const data = Buffer.from('hash me')
  await t.rejects(consumeVerified(from([data]), { hash: flipLast(md5(data)), sink: () => undefined }), { code: 'KEEP_HASH_MISMATCH' })
  await t.rejects(consumeVerified(from([data.subarray(0, 6)]), { hash: md5(data), sink: () => undefined }), { code: 'KEEP_HASH_MISMATCH' }, 'a body one byte short')
})

t.test('consumeVerified: a Uint8Array view is read at its own offset and length', async (t) => {
  const backing = Buffer.from('xxhelloyy')
  const view = new Uint8Array(backing.buffer, backing.byteOffset + 2, 5)
  const sunk: Buffer[] = []
  t.equal(await consumeVerified(from([view]), { hash: md5(Buffer.from('hello')), sink: (c) => void sunk.push(c) }), 5)
  t.equal(Buffer.concat(sunk).toString(), 'hello')
})

t.test('consumeVerified: errors of the source and the sink propagate unchanged; the source is closed', async (t) => {
  const boom = new Error('source broke')
  let closed = 0
  const failing: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: () => ({
      next: () => Promise.reject(boom),
      return: () => {
        closed++
        return Promise.resolve({ done: true as const, value: undefined })
      },
    }),
  }
  t.equal(await consumeVerified(failing, { hash: md5(), sink: () => undefined }).catch((e: unknown) => e), boom, 'the very error of the source')
  t.equal(closed, 1, 'return() was called')
  const sinkErr = new KeepError('KEEP_IO', 'disk')
  t.equal(await consumeVerified(from([Buffer.from('x')]), { hash: md5(Buffer.from('x')), sink: () => Promise.reject(sinkErr) }).catch((e: unknown) => e), sinkErr, 'the very error of the sink')
})

t.test('consumeVerified: an abort ends the wait for a stalled source', async (t) => {
  const before = new AbortController()
  before.abort()
  let read = 0
  async function* counted(): AsyncGenerator<Buffer> {
    read++
    yield Buffer.from('x')
  }
  await t.rejects(consumeVerified(counted(), { hash: md5(Buffer.from('x')), signal: before.signal, sink: () => undefined }), { code: 'KEEP_TIMEOUT' }, 'already aborted → KEEP_TIMEOUT')
  t.equal(read, 0, 'an already aborted write never reads its source')
  const reason = new KeepError('KEEP_UNAVAILABLE', 'shutting down')
  const withReason = new AbortController()
  withReason.abort(reason)
  t.equal(await consumeVerified(from([]), { hash: md5(), signal: withReason.signal, sink: () => undefined }).catch((e: unknown) => e), reason, 'a KeepError reason is the error')

  let returned = false
  let started: () => void = () => undefined
  const waiting = new Promise<void>((r) => (started = r))
  const stalled: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: () => ({
      next: () => {
        started()
        return new Promise<IteratorResult<Buffer>>(() => undefined)
      },
      return: () => {
        returned = true
        return Promise.resolve({ done: true as const, value: undefined })
      },
    }),
  }
  const ac = new AbortController()
  const p = consumeVerified(stalled, { hash: md5(), signal: ac.signal, sink: () => undefined })
  await waiting
  ac.abort()
  await t.rejects(p, { code: 'KEEP_TIMEOUT' }, 'aborted while stalled')
  t.ok(returned, 'the stalled source was closed')

  // An abort that comes while the sink is busy is seen before the next chunk is taken.
  const late = new AbortController()
  const taken: Buffer[] = []
  const q = consumeVerified(from([Buffer.from('a'), Buffer.from('b')]), {
    hash: md5(Buffer.from('ab')),
    signal: late.signal,
    sink: (c) => {
      taken.push(c)
      late.abort()
    },
  })
  await t.rejects(q, { code: 'KEEP_TIMEOUT' })
  t.equal(taken.length, 1, 'no chunk after the abort reached the sink')
})

function source(chunks: Buffer[], counters = { closed: 0 }): ChunkSource & { counters: { closed: number } } {
  let i = 0
  return {
    counters,
    next: async () => chunks[i++] ?? null,
    close: async () => void counters.closed++,
  }
}

async function collect(stream: NodeJS.ReadableStream): Promise<{ bytes: Buffer; error: unknown }> {
  const got: Buffer[] = []
  try {
    for await (const c of stream) got.push(c as Buffer)
    return { bytes: Buffer.concat(got), error: undefined }
  } catch (error) {
    return { bytes: Buffer.concat(got), error }
  }
}

t.test('verified stream: a good block streams whole, the source is closed once', async (t) => {
  const chunks = ['one ', 'two ', 'three'].map((s) => Buffer.from(s))
  const src = source(chunks)
  const { bytes, error } = await collect(createVerifiedStream(src, { hash: md5(...chunks), size: 13 }))
  t.equal(error, undefined)
  t.equal(bytes.toString(), 'one two three')
  t.equal(src.counters.closed, 1)
  const empty = await collect(createVerifiedStream(source([]), { hash: md5(), size: 0 }))
  t.equal(empty.error, undefined, 'the empty block')
  t.equal(empty.bytes.length, 0)
})

t.test('verified stream: a corrupt last byte, or a size one off, never yields the complete body', async (t) => {
  const chunks = ['one ', 'two ', 'three'].map((s) => Buffer.from(s))
  const good = md5(...chunks)
  const rows: Array<{ name: string; chunks: Buffer[]; hash: string; size: number }> = [
    { name: 'last byte changed', chunks: [...chunks.slice(0, 2), Buffer.from('threE')], hash: good, size: 13 },
    { name: 'hash one digit off', chunks, hash: flipLast(good), size: 13 },
    { name: 'size hint one more than stored', chunks, hash: good, size: 14 },
    { name: 'size hint one less than stored', chunks, hash: good, size: 12 },
    { name: 'a single corrupt chunk', chunks: [Buffer.from('x')], hash: md5(Buffer.from('y')), size: 1 },
  ]
  for (const row of rows) {
    const src = source(row.chunks)
    const { bytes, error } = await collect(createVerifiedStream(src, { hash: row.hash, size: row.size }))
    t.match(error, { code: 'KEEP_CORRUPT' }, `${row.name}: KEEP_CORRUPT`)
    t.ok(bytes.length < 13, `${row.name}: only ${bytes.length} bytes were released`)
    t.equal(src.counters.closed, 1, `${row.name}: closed once`)
  }
})

t.test('verified stream: a failing source maps through mapError, else KEEP_IO', async (t) => {
  const broken: ChunkSource = { next: () => Promise.reject(new Error('EIO')), close: async () => undefined }
  t.match((await collect(createVerifiedStream(broken, { hash: md5(), size: 0 }))).error, { code: 'KEEP_IO' })
  const mapped = await collect(createVerifiedStream(broken, { hash: md5(), size: 0, mapError: () => new KeepError('KEEP_CORRUPT', 'mapped') }))
  t.match(mapped.error, { code: 'KEEP_CORRUPT' })
  const closeFails: ChunkSource = { next: async () => null, close: () => Promise.reject(new Error('close')) }
  t.match((await collect(createVerifiedStream(closeFails, { hash: md5(), size: 0 }))).error, { code: 'KEEP_IO' }, 'a failing close is an error too')
})

t.test('consumeVerified with a signal: a source error still propagates, and no abort listener is left behind', async (t) => {
  const ac = new AbortController()
  const boom = new Error('source broke under a signal')
  async function* failing(): AsyncGenerator<Buffer> {
    yield Buffer.from('a')
    throw boom
  }
  t.equal(await consumeVerified(failing(), { hash: md5(), signal: ac.signal, sink: () => undefined }).catch((e: unknown) => e), boom)
  t.equal(getEventListeners(ac.signal, 'abort').length, 0, 'after a failure')
  const chunks = Array.from({ length: 50 }, (_, i) => Buffer.from(`chunk ${i};`))
  t.equal(await consumeVerified(from(chunks), { hash: md5(...chunks), signal: ac.signal, sink: () => undefined }), Buffer.concat(chunks).length)
  t.equal(getEventListeners(ac.signal, 'abort').length, 0, 'after 50 chunks: one listener per step, each removed')
})

t.test('verified stream: destroyed while a read is pending, the source is not read again after it was closed', async (t) => {
  let reads = 0
  let closed = 0
  let deliver: (b: Buffer) => void = () => undefined
  let asked: () => void = () => undefined
  const firstAsked = new Promise<void>((r) => (asked = r))
  const src: ChunkSource = {
    next: () => {
      reads++
      asked()
      return reads === 1 ? new Promise<Buffer>((r) => (deliver = r)) : Promise.resolve(Buffer.from('more'))
    },
    close: async () => void closed++,
  }
  const stream = createVerifiedStream(src, { hash: md5(Buffer.from('firstmore')), size: 9 })
  stream.on('error', () => undefined)
  stream.resume()
  await firstAsked
  stream.destroy()
  await new Promise((r) => stream.once('close', r))
  deliver(Buffer.from('first'))
  await new Promise((r) => setImmediate(r))
  t.equal(closed, 1, 'closed once')
  t.equal(reads, 1, 'no read after the destroy')
})

t.test('verified stream: while its reader is busy, it has already asked for the chunk after the one it holds back', async (t) => {
  // Chunks of the stream's own buffer size: one pushed chunk fills the buffer, so any further
  // read is the read-ahead (the thread pool reads the next chunk while this thread hashes).
  const size = 1024 * 1024
  const chunks = [0, 1, 2, 3].map((i) => Buffer.alloc(size, i))
  let asked = 0
  const src: ChunkSource = { next: async () => chunks[asked++] ?? null, close: async () => undefined }
  const stream = createVerifiedStream(src, { hash: md5(...chunks), size: 4 * size })
  const first = await new Promise<Buffer>((resolve) => stream.once('readable', () => resolve(stream.read() as Buffer)))
  await new Promise((r) => setImmediate(r))
  t.ok(first.equals(chunks[0]!), 'the first chunk came out')
  // Without reading ahead: chunk 0 pushed, chunk 1 held back, chunk 2 read (2 reads past the pushed one).
  t.equal(asked, 4, 'chunk 0 out, chunk 1 held, chunk 2 buffered and chunk 3 already asked for')
  const rest = await collect(stream)
  t.equal(rest.error, undefined)
  t.ok(Buffer.concat([first, rest.bytes]).equals(Buffer.concat(chunks)), 'the whole block, in order')
})
