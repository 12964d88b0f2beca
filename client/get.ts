import { randomBytes } from 'node:crypto'
import { open, rename, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { KeepError } from '../shared/errors.js'
import { fetchBlock } from './block-fetcher.js'
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
    if (options.file === undefined) await fetchInOrder(ctx, plan, options.parallel, progress, (data) => writeOut(options.out, data))
    else await toFile(ctx, plan, options.file, options.parallel, progress)
  } finally {
    progress.stop()
  }
}

/** Bytes of a block gathered before one write to the temporary file. */
const WRITE_BATCH = 4 * 1024 * 1024

/**
 * Blocks go straight to their place in the temporary file as they arrive (in
 * batches, each written before more is received, so a copy that turns out
 * bad is overwritten in full by the next server's): no block is held in
 * memory, and none of it is visible until the rename.
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
  const write = async (data: Buffer[], at: number): Promise<void> => {
    const size = data.reduce((n, b) => n + b.length, 0)
    const written = (await handle.writev(data, at)).bytesWritten
    // writev writes all of a regular file's buffers or fails; a short count would be a bug to hear about.
    if (written !== size) throw new KeepError('KEEP_IO', `short write to ${file}: ${written} of ${size} bytes`)
  }
  const abort = new AbortController()
  let done = false
  try {
    let at = 0
    const jobs = plan.pieces.map((piece) => {
      const start = at
      at += piece.to - piece.from
      return { piece, start }
    })
    await eachLimited(jobs, parallel, async ({ piece, start }) => {
      let batch: Buffer[] = []
      let batchAt = 0
      let batchSize = 0
      const flush = async (): Promise<void> => {
        if (batchSize > 0) await write(batch, start + batchAt - piece.from)
        batch = []
        batchSize = 0
      }
      const sink = {
        async write(chunk: Buffer, offset: number): Promise<void> {
          if (offset === 0) {
            // Another server's copy starts over (it rewrites whatever the bad one left in the file).
            batch = []
            batchSize = 0
          }
          const from = Math.max(offset, piece.from)
          const to = Math.min(offset + chunk.length, piece.to)
          if (from >= to) return
          if (batchSize === 0) batchAt = from
          batch.push(chunk.subarray(from - offset, to - offset))
          batchSize += to - from
          if (batchSize >= WRITE_BATCH) await flush()
        },
      }
      try {
        await fetchBlock(ctx, plan.blocks[piece.block]!, sink, abort.signal)
      } catch (err) {
        abort.abort(err)
        throw err
      }
      await flush()
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

function writeOut(out: Writable, data: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    if (data.length === 0) return resolve()
    const onError = (err: Error): void => reject(err)
    out.once('error', onError)
    for (let i = 0; i < data.length - 1; i++) out.write(data[i])
    // Resolve once the last piece is written, not merely queued: the stream's buffer is the only bound.
    out.write(data[data.length - 1], (err) => {
      out.off('error', onError)
      if (err) reject(err)
      else resolve()
    })
  })
}

/** The part [from, to) of a block held as chunks. */
function slice(chunks: readonly Buffer[], from: number, to: number): Buffer[] {
  const out: Buffer[] = []
  let at = 0
  for (const chunk of chunks) {
    const start = Math.max(from - at, 0)
    const end = Math.min(to - at, chunk.length)
    if (start < end) out.push(start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end))
    at += chunk.length
  }
  return out
}

/**
 * Fetches the plan's pieces, `parallel` ahead, each block held as the chunks
 * it arrived in (no copy), and emits them in order once verified. The first
 * failure stops the rest.
 */
async function fetchInOrder(ctx: ClientContext, plan: ReadPlan, parallel: number, progress: Progress, emit: Emit): Promise<void> {
  const abort = new AbortController()
  const fetched: Array<Promise<Buffer[]>> = []
  const startNext = (): void => {
    const piece = plan.pieces[fetched.length]
    if (piece === undefined) return
    const block = plan.blocks[piece.block]!
    let chunks: Buffer[] = []
    const next = fetchBlock(
      ctx,
      block,
      {
        write(chunk, offset) {
          if (offset === 0) chunks = [] // another server's copy starts over
          chunks.push(chunk)
        },
      },
      abort.signal,
    ).then(
      () => slice(chunks, piece.from, piece.to),
      (err: unknown) => {
        abort.abort(err)
        throw err
      },
    )
    next.catch(() => undefined) // awaited in order below; until then a rejection is not "unhandled"
    fetched.push(next)
  }
  for (let i = 0; i < parallel; i++) startNext()
  try {
    for (let i = 0; i < plan.pieces.length; i++) {
      const piece = plan.pieces[i]!
      await emit(await fetched[i]!)
      fetched[i] = Promise.resolve([]) // let the chunks go
      progress.add(piece.to - piece.from)
      startNext()
    }
  } finally {
    abort.abort()
    await Promise.allSettled(fetched)
  }
}
