import { randomBytes } from 'node:crypto'
import { fstatSync, writeSync } from 'node:fs'
import { open, rename, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { KeepError } from '../shared/errors.js'
import { fetchBlock, type BlockSink } from './block-fetcher.js'
import { BufferPool } from './block-reader.js'
import type { ClientContext } from './context.js'
import type { ReadPlan } from './manifest.js'
import { createProgress, type Progress } from './progress.js'

export interface GetOptions {
  /** Blocks fetched at once (each held in memory until verified and written). */
  parallel: number
  progress: boolean
  /** Write here (through a temporary name, renamed once every block verified); else `out`. */
  file: string | undefined
  out: Writable
}

/** Where verified bytes go, in order (a block's pieces). */
type Emit = (data: Buffer[]) => Promise<void>

/**
 * `keep get`: the plan's bytes, each block verified (size and MD5) before it
 * counts, read from the next server when a copy fails. To a file: through a
 * temporary name beside it, renamed over the target only when every block
 * verified (a failure removes it). To `out`: a block is held until it
 * verified, then written in order, so a consumer never sees a byte that did
 * not verify. Up to `parallel` blocks are fetched at once.
 */
export async function getData(ctx: ClientContext, plan: ReadPlan, options: GetOptions): Promise<void> {
  const progress = await createProgress(options.progress, 'get', plan.size)
  try {
    if (options.file === undefined) {
      const piece = writesToFile(options.out) ? WRITE_PIECE : Infinity
      await fetchInOrder(ctx, plan, options.parallel, progress, (data) => writeOut(options.out, data, piece))
    }
    else await toFile(ctx, plan, options.file, options.parallel, progress)
  } finally {
    progress.stop()
  }
}

/** Bytes of a block gathered before they are written to the temporary file (one buffer per block in flight). */
const WRITE_BATCH = 2 * 1024 * 1024
/**
 * Bytes per write call (to the temporary file, and to stdout when it is a
 * file). Measured here (ext4, a 6.18 kernel in a VM): 1 GiB written in 16
 * or 64 KiB calls cost 0.3–0.7 s of system time, in 256 KiB or 2 MiB calls
 * 0.3–3.3 s (a large write gets large page-cache folios, whose first touch
 * is slow here); curl writes 16 KiB at a time.
 */
const WRITE_PIECE = 64 * 1024

/**
 * Blocks go straight to their place in the temporary file as they arrive:
 * each is received into a buffer of WRITE_BATCH bytes, written out whenever
 * it fills; a copy that turns out bad is overwritten in full by the next
 * server's. No block is held in memory, and none of it is visible until the
 * rename. The writes are synchronous, one 64 KiB call after another on the
 * one thread: a page-cache write of 64 KiB takes tens of microseconds, the
 * command has nothing else to do meanwhile (the sockets' kernel buffers go
 * on filling), and the thread-pool round trip per write cost ~1 CPU-s per
 * GiB more (measured: 3.7–4.0 vs 2.7–2.9 CPU-s for a 1 GiB get); a disk
 * that falls behind holds the reads back by itself.
 */
async function toFile(ctx: ClientContext, plan: ReadPlan, file: string, parallel: number, progress: Progress): Promise<void> {
  const target = path.resolve(file)
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.keep-${randomBytes(6).toString('hex')}`)
  let handle: FileHandle
  try {
    handle = await open(tmp, 'wx', 0o644)
  } catch (err) {
    throw new KeepError('KEEP_BAD_REQUEST', `cannot write ${file}: ${(err as Error).message}`)
  }
  const write = (data: Buffer, at: number): void => {
    for (let from = 0; from < data.length; from += WRITE_PIECE) {
      const length = Math.min(WRITE_PIECE, data.length - from)
      let written: number
      try {
        written = writeSync(handle.fd, data, from, length, at + from)
      } catch (err) {
        throw new KeepError('KEEP_IO', `cannot write ${file}: ${(err as Error).message}`)
      }
      // A regular file takes all of a write or fails; a short count would be a bug to hear about.
      if (written !== length) throw new KeepError('KEEP_IO', `short write to ${file}: ${written} of ${length} bytes`)
    }
  }
  const abort = new AbortController()
  // Batch buffers, reused by the blocks that follow.
  const spare: Buffer[] = []
  let done = false
  try {
    let at = 0
    const jobs = plan.pieces.map((piece) => {
      const start = at
      at += piece.to - piece.from
      return { piece, start }
    })
    await eachLimited(jobs, parallel, async ({ piece, start }) => {
      const block = plan.blocks[piece.block]!
      const size = Math.max(1, Math.min(WRITE_BATCH, block.size))
      const buffer = spare.length > 0 && spare.at(-1)!.length >= size ? spare.pop()! : Buffer.allocUnsafeSlow(size)
      // Only the piece's part of the block goes to the file, at its place there.
      const sink = new BatchSink(buffer, block.size, (data, from) => {
        const lo = Math.max(from, piece.from)
        const hi = Math.min(from + data.length, piece.to)
        if (lo < hi) write(data.subarray(lo - from, hi - from), start + lo - piece.from)
      })
      try {
        await fetchBlock(ctx, block, sink, abort.signal)
      } catch (err) {
        abort.abort(err)
        throw err
      }
      spare.push(buffer)
      progress.add(piece.to - piece.from)
    })
    await handle.truncate(plan.size)
    await handle.close()
    await rename(tmp, target)
    done = true
  } finally {
    if (!done) {
      await handle.close().catch(() => undefined)
      await unlink(tmp).catch(() => undefined)
    }
  }
}

/** A block received into one batch buffer, written out (synchronously) each time it fills and at the block's end. */
class BatchSink implements BlockSink {
  private used = 0
  /** Block offset of buffer[0]. */
  private at = 0

  constructor(
    private readonly buffer: Buffer,
    private readonly size: number,
    private readonly write: (data: Buffer, from: number) => void,
  ) {}

  room(left: number): Buffer {
    return this.buffer.subarray(this.used, this.used + Math.min(left, this.buffer.length - this.used))
  }

  filled(n: number, offset: number): void {
    this.used += n
    if (this.used < this.buffer.length && offset + n !== this.size) return
    this.write(this.buffer.subarray(0, this.used), this.at)
    this.at += this.used
    this.used = 0
  }

  restart(): void {
    this.used = 0
    this.at = 0
  }
}

/** Runs `task` over `items`, at most `limit` at once; the first error stops new ones and is thrown. */
async function eachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failed = false
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      try {
        await task(items[next++]!)
      } catch (err) {
        failed = true
        throw err
      }
    }
  }
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker))
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (rejected) throw rejected.reason
}

/** Whether `out` is a stream over a regular file (stdout redirected to one), whose writes go to the page cache. */
function writesToFile(out: Writable): boolean {
  const fd = (out as { fd?: unknown }).fd
  try {
    return typeof fd === 'number' && fstatSync(fd).isFile()
  } catch {
    return false
  }
}

/** Writes `blocks` in order, in pieces of at most `piece` bytes (views, no copy): a file gets WRITE_PIECE calls. */
function writeOut(out: Writable, blocks: Buffer[], piece: number): Promise<void> {
  const data = piece === Infinity ? blocks : blocks.flatMap((b) => Array.from({ length: Math.ceil(b.length / piece) }, (_, i) => b.subarray(i * piece, (i + 1) * piece)))
  return new Promise((resolve, reject) => {
    if (data.length === 0) return resolve()
    const fail = (err: Error): void => reject(new KeepError('KEEP_IO', `cannot write the output: ${err.message}`))
    out.once('error', fail)
    for (let i = 0; i < data.length - 1; i++) out.write(data[i])
    // Resolve once the last piece is written, not merely queued: the stream's buffer is the only bound.
    out.write(data[data.length - 1], (err) => {
      out.off('error', fail)
      if (err) fail(err)
      else resolve()
    })
  })
}

/**
 * Fetches the plan's pieces, `parallel` ahead, each block received into a
 * buffer of its own (at most `parallel` of them, reused), and emits them in
 * order once verified. The first failure stops the rest.
 */
async function fetchInOrder(ctx: ClientContext, plan: ReadPlan, parallel: number, progress: Progress, emit: Emit): Promise<void> {
  const abort = new AbortController()
  const pool = new BufferPool(parallel)
  const fetched: Array<Promise<{ data: Buffer[]; release(): void }>> = []
  const startNext = (): void => {
    const piece = plan.pieces[fetched.length]
    if (piece === undefined) return
    const block = plan.blocks[piece.block]!
    const next = (async () => {
      const buffer = await pool.take(Math.max(1, block.size))
      let at = 0
      const sink: BlockSink = {
        room: (left) => buffer.subarray(at, at + left),
        filled: (n) => void (at += n),
        restart: () => void (at = 0), // another server's copy starts over
      }
      try {
        await fetchBlock(ctx, block, sink, abort.signal)
      } catch (err) {
        pool.give(buffer)
        abort.abort(err)
        throw err
      }
      return { data: piece.to > piece.from ? [buffer.subarray(piece.from, piece.to)] : [], release: () => pool.give(buffer) }
    })()
    next.catch(() => undefined) // awaited in order below; until then a rejection is not "unhandled"
    fetched.push(next)
  }
  for (let i = 0; i < parallel; i++) startNext()
  try {
    for (let i = 0; i < plan.pieces.length; i++) {
      const piece = plan.pieces[i]!
      const { data, release } = await fetched[i]!
      await emit(data)
      release()
      progress.add(piece.to - piece.from)
      startNext()
    }
  } finally {
    abort.abort()
    await Promise.allSettled(fetched)
  }
}
