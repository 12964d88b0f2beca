import { setTimeout as sleep } from 'node:timers/promises'
import type { KeepstoreConfig } from '../shared/config.js'
import { KeepError } from '../shared/errors.js'
import type { KeepstoreClient } from '../shared/keepstore-client.js'
import { serviceOrder } from '../shared/rendezvous.js'
import { describeNetError, reasonOf } from './context.js'

export interface WritePolicy {
  /** Replicas wanted (in each class, when classes are given). */
  replicas: number
  /** Storage classes, each wanting `replicas`; empty = any mount, counted in total. */
  classes: readonly string[]
  /** Further rounds over the servers that failed in a way worth retrying (no answer, 408, 429, 5xx but 507). */
  retries: number
  /** Pause before the first retry round; doubled each round. */
  retryDelayMs: number
}

export interface WriteResult {
  /** `hash+size`. */
  locator: string
  replicas: number
  /** Per class, the replicas servers confirmed (empty when no classes were asked for). */
  classes: Record<string, number>
  /** Uuids of the servers that stored it, in the order they answered. */
  servers: string[]
}

interface Attempt {
  server: KeepstoreConfig
  /** 0 = no answer. */
  status: number
  replicas: number
  confirmed: Record<string, number> | undefined
  reason: string
}

/** `X-Keep-Storage-Classes-Confirmed: a=1, b=2` → {a: 1, b: 2}; absent or empty → undefined. */
export function parseConfirmed(header: string | string[] | undefined): Record<string, number> | undefined {
  const text = Array.isArray(header) ? header.join(',') : header
  if (!text?.trim()) return undefined
  const out: Record<string, number> = {}
  for (const part of text.split(',')) {
    const m = /^\s*([^=\s]+)\s*=\s*(\d+)\s*$/.exec(part)
    if (m) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2])
  }
  return out
}

const retryable = (status: number): boolean => status === 0 || status === 408 || status === 429 || (status >= 500 && status !== 507)

/**
 * Writes one block as Keep clients do: servers in rendezvous order, as many
 * PUTs at once as replicas are still missing (the fewest any class still
 * misses), each asking only for the classes still missing; a failure moves on
 * to the next server, and servers that failed in a retryable way (503 busy,
 * no answer) get another round after a growing pause. A PUT of bytes a
 * server already holds only refreshes their mtime, so a block the cluster
 * has is written again all the same: that is what keeps a pending trash item
 * from removing it.
 * @throws KeepError KEEP_INSUFFICIENT_REPLICAS (or KEEP_UNAVAILABLE /
 * KEEP_FORBIDDEN when nothing was stored and that is why).
 */
export async function writeBlock(
  client: KeepstoreClient,
  keepstores: readonly KeepstoreConfig[],
  block: { hash: string; size: number; data: Buffer },
  policy: WritePolicy,
  signal?: AbortSignal,
): Promise<WriteResult> {
  const locator = `${block.hash}+${block.size}`
  const todo = new Map<string, number>(policy.classes.map((c) => [c, policy.replicas]))
  let totalTodo = policy.replicas
  const result: WriteResult = { locator, replicas: 0, classes: {}, servers: [] }
  const lastError = new Map<string, string>()
  const failures: Attempt[] = []
  const missing = (): number => (todo.size > 0 ? Math.min(...todo.values()) : policy.classes.length > 0 ? 0 : Math.max(totalTodo, 0))

  let queue = serviceOrder(block.hash, keepstores, (k) => k.uuid)
  let delay = policy.retryDelayMs
  for (let round = 0; ; round++) {
    const retry: KeepstoreConfig[] = []
    const active = new Map<KeepstoreConfig, Promise<Attempt>>()
    let next = 0
    for (;;) {
      while (active.size < missing() && next < queue.length) {
        const server = queue[next++]!
        active.set(server, putOnce(client, server, locator, block.data, [...todo.keys()], signal))
      }
      if (active.size === 0) break
      const attempt = await Promise.race(active.values())
      active.delete(attempt.server)
      if (attempt.status === 200) {
        lastError.delete(attempt.server.uuid)
        result.servers.push(attempt.server.uuid)
        result.replicas += attempt.replicas
        totalTodo -= attempt.replicas
        const confirmed = attempt.confirmed
        for (const [cls, left] of todo) {
          // A server that confirms no classes is counted against every class (as Keep clients do).
          const got = confirmed === undefined ? attempt.replicas : (confirmed[cls] ?? 0)
          if (got > 0) result.classes[cls] = (result.classes[cls] ?? 0) + got
          if (left - got <= 0) todo.delete(cls)
          else todo.set(cls, left - got)
        }
      } else {
        lastError.set(attempt.server.uuid, `${attempt.server.url}: ${attempt.reason}`)
        failures.push(attempt)
        if (retryable(attempt.status)) retry.push(attempt.server)
      }
    }
    if (missing() <= 0) return result
    if (signal?.aborted) throw signal.reason
    if (retry.length === 0 || round >= policy.retries) break
    await sleep(delay, undefined, signal ? { signal } : {})
    delay *= 2
    queue = retry
  }
  throw insufficient(locator, result, policy, [...lastError.values()], failures)
}

function insufficient(locator: string, result: WriteResult, policy: WritePolicy, errors: string[], failures: Attempt[]): KeepError {
  const why = errors.length ? `: ${errors.join('; ')}` : ': not enough keepstores in the config'
  if (result.replicas === 0 && failures.length > 0) {
    if (failures.every((f) => f.status === 0)) return new KeepError('KEEP_UNAVAILABLE', `block ${locator}: no keepstore reachable${why}`)
    if (failures.every((f) => f.status === 401 || f.status === 403)) return new KeepError('KEEP_FORBIDDEN', `block ${locator}: permission denied${why}`)
  }
  const stored =
    policy.classes.length > 0
      ? policy.classes.map((c) => `${c} ${result.classes[c] ?? 0}`).join(', ')
      : `${result.replicas}`
  return new KeepError(
    'KEEP_INSUFFICIENT_REPLICAS',
    `block ${locator}: not enough replicas stored: ${stored} of ${policy.replicas} wanted${policy.classes.length > 0 ? ' per class' : ''}${why}`,
  )
}

async function putOnce(
  client: KeepstoreClient,
  server: KeepstoreConfig,
  locator: string,
  data: Buffer,
  classes: string[],
  signal: AbortSignal | undefined,
): Promise<Attempt> {
  const attempt: Attempt = { server, status: 0, replicas: 0, confirmed: undefined, reason: '' }
  try {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' }
    if (classes.length > 0) headers['x-keep-storage-classes'] = classes.join(', ')
    const res = await client.request('PUT', server.url, `/${locator}`, { body: data, headers, ...(signal ? { signal } : {}) })
    attempt.status = res.status
    if (res.status === 200) {
      await res.body.dump()
      attempt.replicas = Number(res.headers['x-keep-replicas-stored'] ?? 1) || 1
      attempt.confirmed = parseConfirmed(res.headers['x-keep-storage-classes-confirmed'])
    } else {
      attempt.reason = `${res.status} ${await reasonOf(res.body)}`.trim()
    }
  } catch (err) {
    attempt.reason = describeNetError(err)
  }
  return attempt
}
