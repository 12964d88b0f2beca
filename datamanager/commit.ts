import { setTimeout as delay } from 'node:timers/promises'
import { isKeepError } from '../shared/errors.js'
import type { Logger } from '../shared/logger.js'
import { pullItemCodec, trashItemCodec, type ItemCodec } from '../shared/worklist-items.js'
import type { ChangeSet } from './change-sets.js'
import type { DatamanagerClient, ServerRef } from './indexes.js'
import { FENCE_HEADER, type RunFence } from './fencing.js'

/** `sent`: the server answered 200; `failed`: every attempt failed; `not-sent`: on purpose. */
export type SendOutcome = 'sent' | 'failed' | 'not-sent'

export interface ServerCommit {
  server: string
  url: string
  pull: SendOutcome
  trash: SendOutcome
  /** The last error, when something failed. */
  error: string | undefined
}

export interface CommitOptions {
  client: Pick<DatamanagerClient, 'putJson'>
  logger: Logger
  /** Attempts per request (default 3). */
  attempts?: number
  /** Wait before the second attempt, doubled for each further one (default 1 s). */
  retryDelayMs?: number
  /** Injected for tests; default: a timer. */
  sleep?(ms: number): Promise<void>
  /**
   * With a cluster-wide lock: every list carries the fence; once it stops
   * (lock lost, or a 409 from any server) nothing more is sent, and what was
   * not sent stays `not-sent`.
   */
  fence?: RunFence
}

const EMPTY = '[]'

/** Wall time of the two halves of a commit, in ms (keep-balance's send_pull_lists and send_trash_lists). */
export interface CommitTimings {
  pullListsMs: number
  trashListsMs: number
}

/**
 * Sends every server its complete pull list, then (once every pull list
 * was answered) every server its trash list, as keep-balance's CommitPulls
 * and CommitTrash: servers concurrently, each request retried. Empty lists
 * are sent on purpose: a new list replaces the keepstore's, so `[]` clears
 * work a previous run left. With `clearFirst`, every server first gets an
 * empty trash list, and nothing else is sent unless all of them accepted it
 * (the set of servers or mounts changed, so old trash lists may rest on a
 * layout that no longer holds). `timings`, when given, is filled in.
 */
export async function commitChanges(
  sets: readonly ChangeSet[],
  options: CommitOptions & { clearFirst: boolean; timings?: CommitTimings },
): Promise<ServerCommit[]> {
  const results = sets.map((s) => blank(s.server))
  let mark = performance.now()
  const lap = (): number => {
    const now = performance.now()
    const ms = Math.round(now - mark)
    mark = now
    return ms
  }
  if (options.clearFirst) {
    await Promise.all(sets.map((s, i) => send(s.server, '/trash', EMPTY, results[i]!, 'trash', options)))
    if (results.some((r) => r.trash === 'failed')) return results
    options.logger.info({ servers: sets.length }, 'servers or mounts changed since the last run: cleared every trash list first')
    lap()
  }
  await Promise.all(sets.map((s, i) => send(s.server, '/pull', () => listBody(s.pulls, pullItemCodec), results[i]!, 'pull', options)))
  const pullListsMs = lap()
  await Promise.all(sets.map((s, i) => send(s.server, '/trash', () => listBody(s.trashes, trashItemCodec), results[i]!, 'trash', options)))
  if (options.timings !== undefined) {
    options.timings.pullListsMs = pullListsMs
    options.timings.trashListsMs = lap()
  }
  return results
}

/** A refused run: an empty trash list to each of `servers` (those that answered), no pull list at all. */
export async function clearTrashLists(servers: readonly ServerRef[], options: CommitOptions): Promise<ServerCommit[]> {
  const results = servers.map(blank)
  await Promise.all(servers.map((s, i) => send(s, '/trash', EMPTY, results[i]!, 'trash', options)))
  return results
}

const ITEMS_PER_PIECE = 512

/**
 * A list body in pieces of a few hundred items — the same bytes as
 * `serializePullList` / `serializeTrashList`, streamed, so three servers'
 * 100 k-item lists never sit in memory as whole strings at once.
 */
export function* listBody<T>(items: readonly T[], codec: ItemCodec<T>): Generator<string> {
  if (items.length === 0) {
    yield EMPTY
    return
  }
  for (let start = 0; start < items.length; start += ITEMS_PER_PIECE) {
    const piece = items.slice(start, start + ITEMS_PER_PIECE).map(codec.encode).join(',')
    yield `${start === 0 ? '[' : ','}${piece}${start + ITEMS_PER_PIECE >= items.length ? ']' : ''}`
  }
}

function blank(server: ServerRef): ServerCommit {
  return { server: server.uuid, url: server.url, pull: 'not-sent', trash: 'not-sent', error: undefined }
}

async function send(
  server: ServerRef,
  path: '/pull' | '/trash',
  body: string | (() => Iterable<string>),
  result: ServerCommit,
  which: 'pull' | 'trash',
  options: CommitOptions,
): Promise<void> {
  const attempts = options.attempts ?? 3
  const sleep = options.sleep ?? ((ms: number) => delay(ms))
  let wait = options.retryDelayMs ?? 1000
  const fence = options.fence
  const headers = fence === undefined ? {} : { headers: { [FENCE_HEADER]: fence.value } }
  for (let attempt = 1; ; attempt++) {
    if (fence?.signal.aborted) return
    try {
      await options.client.putJson(server.url, path, typeof body === 'string' ? body : body(), headers)
      result[which] = 'sent'
      return
    } catch (err) {
      if (isKeepError(err, 'KEEP_FENCED')) {
        result[which] = 'failed'
        result.error = `PUT ${path}: ${err.message}`
        fence?.refused(server.uuid, err.message)
        return
      }
      if (attempt >= attempts) {
        result[which] = 'failed'
        result.error = `PUT ${path}: ${(err as Error).message}`
        options.logger.error({ server: server.uuid, url: server.url, attempts }, `PUT ${path} failed: ${(err as Error).message}`)
        return
      }
      options.logger.warn({ server: server.uuid, attempt }, `PUT ${path} failed, retrying: ${(err as Error).message}`)
      await sleep(wait)
      wait *= 2
    }
  }
}
