import { open, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { KeepError } from '../shared/errors.js'
import { EMPTY_BLOCK_HASH } from '../shared/hash.js'
import { BufferPool, fileSource, readBlocks, streamSource, type ByteSource } from './block-reader.js'
import { writeBlock, type WritePolicy } from './block-writer.js'
import type { ClientContext } from './context.js'
import { manifestLine } from './manifest.js'
import { createProgress, type Progress } from './progress.js'

export interface PutOptions extends WritePolicy {
  /** Paths; `-` is stdin (at most once). */
  files: string[]
  /** Blocks in memory at once, being read or uploaded (64 MiB each). */
  parallel: number
  /** The name stdin's data gets in the manifest. */
  stdinName: string
  progress: boolean
  /** Manifest lines go here, one per file, in the order given, each once its blocks are stored. */
  out: Writable
  stdin?: Readable
}

interface Input {
  arg: string
  name: string
  /** Bytes, when known in advance (a regular file). */
  size: number | undefined
}

async function inspect(arg: string, stdinName: string): Promise<Input> {
  if (arg === '-') return { arg, name: stdinName, size: undefined }
  let info
  try {
    info = await stat(arg)
  } catch (err) {
    throw new KeepError('KEEP_BAD_REQUEST', `cannot read ${arg}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
  }
  if (info.isDirectory()) throw new KeepError('KEEP_BAD_REQUEST', `cannot put ${arg}: it is a directory (give files)`)
  return { arg, name: path.basename(arg), size: info.isFile() ? info.size : undefined }
}

async function openInput(input: Input, stdin: Readable): Promise<{ source: ByteSource; handle: FileHandle | undefined }> {
  if (input.arg === '-') return { source: streamSource(stdin), handle: undefined }
  try {
    const handle = await open(input.arg, 'r')
    return { source: fileSource(handle), handle }
  } catch (err) {
    throw new KeepError('KEEP_BAD_REQUEST', `cannot read ${input.arg}: ${(err as Error).message}`)
  }
}

/**
 * `keep put`: every file cut into blocks, every block written (never
 * skipped: see writeBlock) while the next ones are read, several in flight.
 * Prints one manifest line per file once all its blocks are stored; the
 * first failure stops the rest and is thrown.
 * @returns the manifest lines, in the order of `files`.
 */
export async function putFiles(ctx: ClientContext, options: PutOptions): Promise<string[]> {
  if (options.files.filter((f) => f === '-').length > 1) throw new KeepError('KEEP_BAD_REQUEST', 'stdin (-) can be given once')
  const inputs: Input[] = []
  for (const arg of options.files) inputs.push(await inspect(arg, options.stdinName))
  const known = inputs.reduce((n, i) => n + (i.size ?? 0), 0)
  const progress = await createProgress(options.progress, 'put', known)
  const pool = new BufferPool(Math.max(1, options.parallel))
  const abort = new AbortController()
  let failure: unknown
  const fail = (err: unknown): void => {
    if (failure === undefined) failure = err
    abort.abort(err)
  }
  const lines: string[] = []
  // A bar and lines on one terminal would overwrite each other: the lines then wait for the bar to end.
  const holdLines = options.progress && (options.out as { isTTY?: boolean }).isTTY === true
  let printed: Promise<void> = Promise.resolve()
  const pending: Array<Promise<unknown>> = []
  try {
    for (const input of inputs) {
      if (failure !== undefined) break
      let file: Promise<string>
      try {
        file = (await storeFile(ctx, input, options, pool, progress, abort.signal, fail)).line
      } catch (err) {
        fail(err) // a file that cannot be opened: stop the uploads in flight too
        break
      }
      pending.push(file)
      printed = printed.then(async () => {
        const line = await file
        if (failure !== undefined) return
        lines.push(line)
        if (!holdLines) options.out.write(`${line}\n`)
      })
    }
    await Promise.allSettled(pending)
    await printed.catch(fail)
  } finally {
    progress.stop()
    if (holdLines) for (const line of lines) options.out.write(`${line}\n`)
  }
  if (failure !== undefined) throw failure
  return lines
}

/**
 * Reads one file to its end, starting a block's upload as soon as it is read;
 * resolves once the file is read (its last blocks may still be uploading)
 * with a promise of its manifest line, which never rejects (`fail` hears errors).
 */
async function storeFile(
  ctx: ClientContext,
  input: Input,
  options: PutOptions,
  pool: BufferPool,
  progress: Progress,
  signal: AbortSignal,
  fail: (err: unknown) => void,
): Promise<{ line: Promise<string> }> {
  const { source, handle } = await openInput(input, options.stdin ?? process.stdin)
  const locators: string[] = []
  const uploads: Array<Promise<void>> = []
  let size = 0
  try {
    for await (const block of readBlocks(source, pool, input.size)) {
      if (signal.aborted) {
        block.release()
        break
      }
      size += block.size
      if (input.size === undefined) progress.grow(block.size)
      const upload = writeBlock(ctx.client, ctx.config.keepstores, block, options, signal)
        .then((result) => {
          locators[block.index] = result.locator
          progress.add(block.size)
        })
        .catch((err: unknown) => {
          fail(err instanceof KeepError ? new KeepError(err.code, `${input.arg}: ${err.message}`) : err)
        })
        .finally(() => block.release())
      uploads.push(upload)
    }
  } catch (err) {
    fail(new KeepError('KEEP_BAD_REQUEST', `cannot read ${input.arg}: ${(err as Error).message}`))
  } finally {
    await handle?.close()
  }
  const line = Promise.all(uploads).then(() => manifestLine(locators.length ? locators : [`${EMPTY_BLOCK_HASH}+0`], size, input.name))
  return { line }
}
