import type { Readable } from 'node:stream'
import { parseLocator } from '../shared/locator.js'
import type { Logger } from '../shared/logger.js'
import type { PullItem } from '../shared/worklist-items.js'
import type { KeepstoreClient } from '../shared/keepstore-client.js'
import type { Signer } from '../shared/signer.js'
import type { Keepstore } from './keepstore.js'
import type { ItemOutcome } from './worklist.js'
import { abandon } from './first-chunk.js'

/** The token pulls are signed for (PROTOCOL.md §4), as Keep does. */
export const PULL_TOKEN = 'keepstore-token-used-for-pulling-data-from-same-cluster'

export interface PullWorkerDeps {
  /** Only what pulling needs: where a block is, and a way to write one. */
  keepstore: Pick<Keepstore, 'requireWritable' | 'holdsOn' | 'writeTo'>
  signer: Signer | undefined
  client: Pick<KeepstoreClient, 'getBlock'>
  logger: Logger
  /** Removes queued entries for the same block and target once it is in place. */
  dropDuplicates(item: PullItem): Promise<unknown>
  /** A source known to be down (etcd membership): skipped instead of waiting for its timeout. Absent or unknown → tried. */
  isDown?(server: string): boolean
  onBytes?(n: number): void
  onFailure?(reason: string): void
}

/**
 * One pull item: fail it at once (KEEP_READ_ONLY) when the named target is
 * read-only; skip it when the target mount already holds the block,
 * otherwise try each listed server once, in order, with a locally signed
 * locator; the volume verifies the MD5 while writing. Concurrent items for the
 * same block and target share one transfer.
 */
export function createPullHandler(deps: PullWorkerDeps): (item: PullItem, ctx: { signal: AbortSignal }) => Promise<ItemOutcome> {
  const inFlight = new Map<string, Promise<ItemOutcome>>()
  return async (item, { signal }) => {
    const key = `${parseLocator(item.locator).hash}/${item.mount_uuid ?? ''}`
    const running = inFlight.get(key)
    if (running) return (await running) === 'failed' ? 'failed' : 'skipped'
    const p = pullOne(deps, item, signal)
    inFlight.set(key, p)
    try {
      return await p
    } finally {
      inFlight.delete(key)
    }
  }
}

async function pullOne(deps: PullWorkerDeps, item: PullItem, signal: AbortSignal): Promise<ItemOutcome> {
  const loc = parseLocator(item.locator)
  const size = loc.size ?? 0
  const target = item.mount_uuid || undefined
  deps.keepstore.requireWritable(target)
  if (await deps.keepstore.holdsOn(target, loc.hash)) {
    await deps.dropDuplicates(item)
    return 'skipped'
  }
  const bare = `${loc.hash}+${size}`
  const signed = deps.signer ? deps.signer.sign(bare, PULL_TOKEN) : bare
  const reasons: string[] = []
  for (const server of item.servers) {
    if (signal.aborted) break
    if (deps.isDown?.(server)) {
      reasons.push(`${server}: not registered in etcd (down)`)
      deps.onFailure?.('source-down')
      continue
    }
    try {
      const body: Readable = await deps.client.getBlock(server, signed, { signal, token: PULL_TOKEN })
      try {
        await deps.keepstore.writeTo(target, loc.hash, body, { expectedSize: size, signal })
      } finally {
        // The write may have failed before reading a byte (read-only mount, no
        // block directory, ENOSPC): the unread body must not crash the process.
        abandon(body)
      }
      deps.onBytes?.(size)
      await deps.dropDuplicates(item)
      deps.logger.info({ hash: loc.hash, server, mount: target ?? null, bytes: size }, 'pulled block')
      return 'done'
    } catch (err) {
      const reason = `${server}: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`.trim()
      reasons.push(reason)
      deps.onFailure?.((err as { code?: string }).code ?? 'error')
    }
  }
  deps.logger.warn({ hash: loc.hash, servers: item.servers, reasons }, 'pull failed on every server')
  return 'failed'
}
