import type { Etcd3 } from 'etcd3'
import type { EtcdConfig } from './config.js'

/**
 * The etcd client and key names of a cluster with `cluster.etcd` (DESIGN §7).
 * etcd holds liveness and the datamanager's lock only: no block is read or
 * written through it, so a keepstore serves blocks whether etcd answers or not.
 *
 * Keys, all under `prefix`:
 * - `keepstores/<uuid>` → a keepstore's registration, under a lease it keeps alive
 * - `datamanager/lock`  → the holder of the one datamanager run; its create revision is the fence
 */
export const etcdKeys = {
  members: (prefix: string): string => `${prefix}keepstores/`,
  member: (prefix: string, uuid: string): string => `${prefix}keepstores/${uuid}`,
  lock: (prefix: string): string => `${prefix}datamanager/lock`,
}

export interface EtcdClientOptions {
  /** Deadline of each unary call (streams have none); default 5 s. */
  callTimeoutMs?: number
}

/**
 * A client for `cluster.etcd.endpoints`. Every unary call has a deadline, so
 * an unreachable etcd is an error within seconds, never a hang. etcd3 (gRPC,
 * protobuf) is loaded here, on first use: ~0.4 s of CPU that a process
 * without `cluster.etcd` never pays.
 */
export async function createEtcdClient(etcd: EtcdConfig, options: EtcdClientOptions = {}): Promise<Etcd3> {
  const timeout = options.callTimeoutMs ?? 5000
  const { Etcd3 } = await import('etcd3')
  return new Etcd3({
    hosts: etcd.endpoints,
    dialTimeout: timeout,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
    // etcd3 re-opens a dropped watch stream after a backoff that grows to 30 s
    // by default, on a timer that outlives close() and holds the process
    // open: 100 ms doubling to at most 1 s keeps both short.
    faultHandling: { watchBackoff: watchBackoff(100) as never },
  })
}

interface Backoff {
  duration: number
  next(): Backoff
}

const MAX_WATCH_BACKOFF_MS = 1000

/** A backoff factory in the shape etcd3 takes from cockatiel: each `next()` one step, doubling up to the cap. */
function watchBackoff(ms: number): { next(): Backoff } {
  const step = (duration: number): Backoff => ({ duration, next: () => step(Math.min(duration * 2, MAX_WATCH_BACKOFF_MS)) })
  return { next: () => step(ms) }
}

/** One short line for a log or an error: the gRPC status text, without the stack. */
export function etcdReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.split('\n')[0]!.slice(0, 200)
}
