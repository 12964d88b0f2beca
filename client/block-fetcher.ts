import { createHash } from 'node:crypto'
import { KeepError, isKeepError } from '../shared/errors.js'
import { EMPTY_BLOCK_HASH } from '../shared/hash.js'
import { serviceOrder } from '../shared/rendezvous.js'
import { CONNECT_TIMEOUT_MS, IDLE_TIMEOUT_MS, codeForStatus, describeNetError, reasonOf, type ClientContext } from './context.js'
import { rawGet, type BodyTarget, type RawAnswer } from './raw-get.js'
import type { StreamBlock } from './manifest.js'

/**
 * Where a block's bytes go while they arrive; nothing counts until the fetch
 * resolves. The sink hands out the memory the bytes are received into.
 */
export interface BlockSink {
  /** Free memory for the block's next bytes: at least 1 byte, at most `left` (see BodyTarget). */
  room(left: number): Buffer
  /** `n` bytes landed at the start of the last room, at block offset `offset`; a promise holds further bytes back. */
  filled(n: number, offset: number): void | Promise<void>
  /** Another server's copy starts at offset 0 over what a failed copy left (settle its writes first). */
  restart(): void | Promise<void>
}

/** Blocks at least this large over plain HTTP are read with {@link rawGet}; smaller ones share undici's kept-alive connections. */
export const RAW_GET_MIN = 1024 * 1024

/** The locator to ask for: signed here when we hold the key, else as given (its `+A` hint, if any). */
export function readLocator(ctx: Pick<ClientContext, 'signer' | 'token'>, block: StreamBlock): string {
  return ctx.signer ? ctx.signer.sign({ ...block.locator, signatures: [] }, ctx.token) : block.text
}

interface Failure {
  url: string
  /** 0 = no answer; -1 = an answer whose bytes did not verify. */
  status: number
  reason: string
}

/** A sink seen through the MD5 and the byte count of the copy being received. */
class Verifier implements BodyTarget {
  readonly md5 = createHash('md5')
  received = 0
  /** The sink failed (the output file could not be written): not the server's fault, and the end of the fetch. */
  sinkError: unknown
  private last: Buffer | undefined

  constructor(
    private readonly block: StreamBlock,
    private readonly sink: BlockSink,
  ) {}

  room(left: number): Buffer {
    this.last = this.sink.room(left)
    return this.last
  }

  filled(n: number): void | Promise<void> {
    this.md5.update(this.last!.subarray(0, n))
    const at = this.received
    this.received += n
    let pending: void | Promise<void>
    try {
      pending = this.sink.filled(n, at)
    } catch (err) {
      // Thrown into a socket's read callback it would be uncaught: a rejection ends the fetch instead.
      this.sinkError ??= err
      return Promise.reject(err)
    }
    return pending instanceof Promise
      ? pending.catch((err: unknown) => {
          this.sinkError ??= err
          throw err
        })
      : pending
  }

  /** `undefined` when the copy is whole and its MD5 matches, else what was wrong. */
  verdict(): string | undefined {
    if (this.received !== this.block.size) return `cut short after ${this.received} of ${this.block.size} bytes`
    return this.md5.digest('hex') === this.block.hash ? undefined : 'bytes do not match the hash (corrupt copy)'
  }
}

/**
 * Reads one block from the keepstores in rendezvous order, verifying its
 * MD5 and size as it arrives. A copy that fails (absent, refused, cut short,
 * wrong bytes) is abandoned and the next server's copy written over it, so
 * when this resolves the sink holds exactly the block's bytes, verified.
 * @throws KeepError: KEEP_INVALID_SIGNATURE (permission), KEEP_UNAVAILABLE,
 * KEEP_BLOCK_NOT_FOUND or KEEP_CORRUPT, with every server's reason.
 */
export async function fetchBlock(ctx: ClientContext, block: StreamBlock, sink: BlockSink, signal?: AbortSignal): Promise<void> {
  if (block.hash === EMPTY_BLOCK_HASH && block.size === 0) return
  const locator = readLocator(ctx, block)
  const failures: Failure[] = []
  let dirty = false
  for (const server of serviceOrder(block.hash, ctx.config.keepstores, (k) => k.uuid)) {
    if (signal?.aborted) throw signal.reason
    if (dirty) await sink.restart()
    const target = new Verifier(block, sink)
    let problem: string | undefined
    try {
      const answer = await get(ctx, server.url, `/${locator}`, block.size, target, signal)
      dirty = target.received > 0
      if (target.sinkError !== undefined) throw target.sinkError
      if (answer.status !== 200) {
        failures.push({ url: server.url, status: answer.status, reason: `${answer.status} ${answer.reason ?? ''}`.trim() })
        continue
      }
      problem = answer.problem ?? target.verdict()
    } catch (err) {
      dirty = target.received > 0
      if (target.sinkError !== undefined) throw target.sinkError
      if (signal?.aborted) throw signal.reason
      if (isKeepError(err) && err.code === 'KEEP_BAD_REQUEST') throw err // ours, not the server's
      failures.push({ url: server.url, status: 0, reason: describeNetError(err) })
      continue
    }
    if (problem === undefined) return
    failures.push({ url: server.url, status: -1, reason: problem })
  }
  throw fetchError(block, failures)
}

/** One GET of a block into `target`: straight from the socket for large blocks over HTTP, else through undici. */
async function get(ctx: ClientContext, server: string, path: string, size: number, target: Verifier, signal: AbortSignal | undefined): Promise<RawAnswer> {
  if (size >= RAW_GET_MIN && server.startsWith('http:')) {
    const headers: Record<string, string> = ctx.token ? { Authorization: `Bearer ${ctx.token}` } : {}
    const answer = await rawGet(server, path, headers, size, target, { signal, connectTimeoutMs: CONNECT_TIMEOUT_MS, idleTimeoutMs: IDLE_TIMEOUT_MS })
    if (!answer.unframed) return answer
  }
  const res = await ctx.client.request('GET', server, path, signal ? { signal } : {})
  if (res.status !== 200) return { status: res.status, reason: await reasonOf(res.body) }
  const problem = await receive(res.body, size, target)
  return problem === undefined ? { status: 200 } : { status: 200, problem }
}

/** Copies a 200 body into the target; `undefined` when it all arrived (the verifier judges it), else what was wrong. */
async function receive(body: AsyncIterable<Buffer>, size: number, target: Verifier): Promise<string | undefined> {
  try {
    for await (const chunk of body) {
      if (target.received + chunk.length > size) return `more than the ${size} bytes of the size hint`
      for (let at = 0; at < chunk.length; ) {
        const into = target.room(size - target.received)
        const n = chunk.copy(into, 0, at)
        at += n
        await target.filled(n)
      }
    }
  } catch (err) {
    return `cut short after ${target.received} bytes (${describeNetError(err)})`
  }
  return undefined
}

function fetchError(block: StreamBlock, failures: Failure[]): KeepError {
  const where = `block ${block.hash}+${block.size}`
  const reasons = failures.map((f) => `${f.url}: ${f.reason}`).join('; ')
  const denied = failures.filter((f) => f.status === 400 || f.status === 401 || f.status === 403)
  if (denied.length > 0) {
    return new KeepError(codeForStatus(denied[0]!.status, 'block'), `${where}: permission denied (check the token and blobSigningKey): ${reasons}`)
  }
  if (failures.length === 0) return new KeepError('KEEP_CONFIG', `${where}: the config lists no keepstore`)
  if (failures.some((f) => f.status === 0) && !failures.some((f) => f.status === -1 || f.status >= 500)) {
    // It may well be on a keepstore that did not answer: say so rather than "not found".
    const unreachable = failures.filter((f) => f.status === 0).length
    const what = unreachable === failures.length ? 'no keepstore reachable' : `not found on the keepstores that answered, ${unreachable} unreachable`
    return new KeepError('KEEP_UNAVAILABLE', `${where}: ${what}: ${reasons}`)
  }
  if (failures.every((f) => f.status === 404)) return new KeepError('KEEP_BLOCK_NOT_FOUND', `${where}: not found on any keepstore: ${reasons}`)
  return new KeepError('KEEP_CORRUPT', `${where}: no keepstore served a verified copy: ${reasons}`)
}
