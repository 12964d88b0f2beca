import type { Test } from 'tap'
import { md5hex } from '../../shared/hash.js'
import { NS_PER_S, setMtimeNs } from './block-files.js'
import { blockFile, parseExact, putOn, startProcessCluster, type DmResult, type KeepstoreProcess, type ProcessCluster } from './process-cluster.js'

export interface TrashSent {
  locator: string
  block_mtime: bigint
  mount_uuid?: string
}

export interface PullSent {
  locator: string
  servers: string[]
  mount_uuid?: string
}

export interface DecisionCluster {
  pc: ProcessCluster
  all: KeepstoreProcess[]
  /** The children's fixed clock, ms (a whole second). */
  F: number
  TTL_NS: bigint
  /** now − TTL in ns: a block whose mtime is below it is older than the TTL. */
  cutoff: bigint
  /** A fresh collection uuid. */
  COLL(): string
  hashOf(locator: string): string
  /** One datamanager run that must commit; returns what each keepstore was sent (its last pull and trash list of the run). */
  commit(t: Test, name: string, records: string[]): Promise<{ result: DmResult; pulls: Map<KeepstoreProcess, PullSent[]>; trashes: Map<KeepstoreProcess, TrashSent[]> }>
  /** [keepstore index, item] of every trash item for `hash`. */
  trashFor(sent: Map<KeepstoreProcess, TrashSent[]>, hash: string): Array<[number, TrashSent]>
  /** Stores `data` on each of `on` and sets every copy's mtime to `mtimes[i]` (ns, exactly). */
  place(data: string, on: KeepstoreProcess[], mtimes: bigint[]): Promise<string>
  /** A referenced block at its two rendezvous positions, young: every run reads a collection with it. */
  keeper: string
}

/**
 * Three child keepstores on real directories behind recording proxies, one
 * fixed clock for every child (the fixed-clock preload), so "older than the
 * TTL" is tested to the nanosecond; block ages are set on the files.
 */
export async function startDecisionCluster(t: Test): Promise<DecisionCluster> {
  const F = Math.floor(Date.now() / 1000) * 1000
  const TTL_NS = 3600n * NS_PER_S
  const cutoff = BigInt(F) * 1_000_000n - TTL_NS
  const pc = await startProcessCluster(t, { keepstores: 3, proxies: true, fixedNowMs: F })
  const all = pc.keepstores
  let n = 0
  const COLL = (): string => `zzzzz-4zz18-${String(++n).padStart(15, '0')}`
  const hashOf = (locator: string): string => locator.slice(0, 32)

  /** One datamanager run that must commit; returns what each keepstore was sent (its last pull and trash list of the run). */
  async function commit(t: Test, name: string, records: string[]): Promise<{ result: DmResult; pulls: Map<KeepstoreProcess, PullSent[]>; trashes: Map<KeepstoreProcess, TrashSent[]> }> {
    const marks = all.map((k) => k.proxy!.requests.length)
    const result = await pc.datamanager({ name, collections: records.map((r) => `${r}\n`).join('') })
    t.equal(result.code, 0, `the run commits; stderr: ${result.stderr}`)
    t.equal(result.report?.outcome, 'committed')
    const pulls = new Map()
    const trashes = new Map()
    all.forEach((k, i) => {
      const sent = k.proxy!.requests.slice(marks[i])
      const last = (p: string): unknown[] => parseExact(sent.filter((q) => q.method === 'PUT' && q.path === p).at(-1)?.body ?? '[]') as unknown[]
      pulls.set(k, last('/pull'))
      trashes.set(k, last('/trash'))
    })
    return { result, pulls, trashes }
  }

  const trashFor = (sent: Map<KeepstoreProcess, TrashSent[]>, hash: string): Array<[number, TrashSent]> =>
    [...sent].flatMap(([k, items]) => items.filter((i) => i.locator.startsWith(hash)).map((i): [number, TrashSent] => [k.index, i]))

  /** Stores `data` on each of `on` and sets every copy's mtime to `mtimes[i]`. */
  async function place(data: string, on: KeepstoreProcess[], mtimes: bigint[]): Promise<string> {
    let locator = ''
    for (const [i, k] of on.entries()) {
      locator = await putOn(k, data)
      setMtimeNs(blockFile(k, hashOf(locator)), mtimes[i]!)
    }
    return locator
  }

  const keeperData = 'a referenced block where it belongs\n'
  const keeper = await place(keeperData, pc.order(md5hex(keeperData)).slice(0, 2), [cutoff + NS_PER_S, cutoff + NS_PER_S])
  return { pc, all, F, TTL_NS, cutoff, COLL, hashOf, commit, trashFor, place, keeper }
}
