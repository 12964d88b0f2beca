import { randomBytes } from 'node:crypto'
import { open, rename, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Writable } from 'node:stream'
import { KeepError } from '../shared/errors.js'
import { fetchBlock } from './block-fetcher.js'
import { BufferPool } from './block-reader.js'
import type { ClientContext } from './context.js'
import type { Piece, ReadPlan } from './manifest.js'
import { createProgress, type Progress } from './progress.js'

export interface GetOptions {
  /** Blocks fetched at once. */
  parallel: number
  progress: boolean
  /** Write here (through a temporary name, renamed once every block verified); else `out`. */
  file: string | undefined
  out: Writable
}

/**
 * `keep get`: the plan's bytes, verified block by block. To a file: blocks
 * are fetched in parallel straight to their place in a temporary file beside
 * it, renamed over the target only when all verified (a failure removes it).
 * To `out`: each block is held until its MD5 matched, then written in order,
 * so a consumer never sees a byte that did not verify.
 */
export async function getData(ctx: ClientContext, plan: ReadPlan, options: GetOptions): Promise<void> {
  const progress = await createProgress(options.progress, 'get', plan.size)
  try {
    if (options.file !== undefined) await toFile(ctx, plan, options.file, options.parallel, progress)
    else await toStream(ctx, plan, options.out, options.parallel, progress)
  } finally {
    progress.stop()
  }
}

/** Runs `task` over `items` with at most `limit` at once; the first error stops new ones and is thrown. */
async function eachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failed = false
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++]!
      try {
        await task(item)
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

async function toFile(ctx: ClientContext, plan: ReadPlan, file: string, parallel: number, progress: Progress): Promise<void> {
  const target = path.resolve(file)
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.keep-${randomBytes(6).toString('hex')}`)
  let handle: FileHandle
  try {
    handle = await open(tmp, 'wx', 0o644)
  } catch (err) {
    throw new KeepError('KEEP_BAD_REQUEST', `cannot write ${file}: ${(err as Error).message}`)
  }
  const abort = new AbortController()
  let done = false
  try {
    const starts = pieceStarts(plan.pieces)
    await eachLimited(plan.pieces.map((piece, i) => ({ piece, at: starts[i]! })), parallel, async ({ piece, at }) => {
      await fetchBlock(
        ctx,
        plan.blocks[piece.block]!,
        {
          async write(chunk, offset) {
            const from = Math.max(offset, piece.from)
            const to = Math.min(offset + chunk.length, piece.to)
            if (from < to) await handle.write(chunk, from - offset, to - from, at + from - piece.from)
          },
        },
        abort.signal,
      ).catch((err: unknown) => {
        abort.abort(err)
        throw err
      })
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

function pieceStarts(pieces: readonly Piece[]): number[] {
  const starts: number[] = []
  let at = 0
  for (const p of pieces) {
    starts.push(at)
    at += p.to - p.from
  }
  return starts
}

function writeOut(out: Writable, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err)
    out.once('error', onError)
    out.write(data, (err) => {
      out.off('error', onError)
      if (err) reject(err)
      else resolve()
    })
  })
}

async function toStream(ctx: ClientContext, plan: ReadPlan, out: Writable, parallel: number, progress: Progress): Promise<void> {
  const pool = new BufferPool(Math.max(1, parallel))
  const abort = new AbortController()
  // Fetches start in order as buffers free up; the writer takes them in the same order.
  const fetched: Array<Promise<Buffer>> = []
  let started = 0
  const startNext = (): void => {
    if (started >= plan.pieces.length) return
    const piece = plan.pieces[started++]!
    const block = plan.blocks[piece.block]!
    const next = pool.take(Math.max(1, block.size)).then(async (buffer) => {
        try {
          await fetchBlock(ctx, block, { write: (chunk, offset) => void chunk.copy(buffer, offset) }, abort.signal)
        } catch (err) {
          pool.give(buffer)
          abort.abort(err)
          throw err
        }
        return buffer
      })
    next.catch(() => undefined) // awaited in order below; until then a rejection is not "unhandled"
    fetched.push(next)
  }
  for (let i = 0; i < parallel; i++) startNext()
  try {
    for (let i = 0; i < plan.pieces.length; i++) {
      const piece = plan.pieces[i]!
      const buffer = await fetched[i]!
      try {
        // The buffer is reused once written: wait for the write itself, not just for room in the stream.
        if (piece.to > piece.from) await writeOut(out, buffer.subarray(piece.from, piece.to))
      } finally {
        pool.give(buffer)
      }
      progress.add(piece.to - piece.from)
      startNext()
    }
  } finally {
    abort.abort()
    await Promise.allSettled(fetched)
  }
}
