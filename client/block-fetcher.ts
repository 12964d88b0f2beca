import { createHash } from 'node:crypto'
import { KeepError } from '../shared/errors.js'
import { EMPTY_BLOCK_HASH } from '../shared/hash.js'
import { serviceOrder } from '../shared/rendezvous.js'
import { codeForStatus, describeNetError, reasonOf, type ClientContext } from './context.js'
import type { StreamBlock } from './manifest.js'

/** Where a block's bytes go while they arrive; nothing counts until the fetch resolves. */
export interface BlockSink {
  /** `chunk` holds the block's bytes from `offset`; awaited before the next chunk. */
  write(chunk: Buffer, offset: number): void | Promise<void>
}

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
  for (const server of serviceOrder(block.hash, ctx.config.keepstores, (k) => k.uuid)) {
    if (signal?.aborted) throw signal.reason
    let res
    try {
      res = await ctx.client.request('GET', server.url, `/${locator}`, signal ? { signal } : {})
    } catch (err) {
      failures.push({ url: server.url, status: 0, reason: describeNetError(err) })
      continue
    }
    if (res.status !== 200) {
      failures.push({ url: server.url, status: res.status, reason: `${res.status} ${await reasonOf(res.body)}`.trim() })
      continue
    }
    const problem = await receive(res.body, block, sink)
    if (problem === undefined) return
    failures.push({ url: server.url, status: -1, reason: problem })
  }
  throw fetchError(block, failures)
}

/** Streams a 200 body into the sink; `undefined` when every byte verified, else what was wrong. */
async function receive(body: AsyncIterable<Buffer>, block: StreamBlock, sink: BlockSink): Promise<string | undefined> {
  const md5 = createHash('md5')
  let received = 0
  try {
    for await (const chunk of body) {
      if (received + chunk.length > block.size) return `more than the ${block.size} bytes of the size hint`
      md5.update(chunk)
      await sink.write(chunk, received)
      received += chunk.length
    }
  } catch (err) {
    return `cut short after ${received} bytes (${describeNetError(err)})`
  }
  if (received !== block.size) return `cut short after ${received} of ${block.size} bytes`
  return md5.digest('hex') === block.hash ? undefined : 'bytes do not match the hash (corrupt copy)'
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
