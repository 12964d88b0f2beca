import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { PREFIX_COUNT } from '../shared/index-digests.js'
import type { BalancePolicy } from './balance.js'
import type { StoredRecord } from './index-store.js'
import type { ReferencesOnDisk } from './reference-source.js'
import type { ServerInfo } from './topology.js'

/** A stored record and the file it is in. */
export interface RecordOnDisk {
  file: string
  offset: number
  length: number
  sha256: string
  count: number
}

/** What every worker thread is started with. */
export interface DecideInit {
  /** The servers that answered, with their mounts (the topology is built from them). */
  servers: readonly ServerInfo[]
  policy: BalancePolicy
  /** Each source's server and mount uuids, in the pass's order. */
  sources: ReadonlyArray<readonly [string, string]>
}

/** Prefixes `first`…`first + count - 1`: per prefix, per source, where its lines are; and where the references are. */
export interface DecideChunk {
  id: number
  first: number
  count: number
  lines: RecordOnDisk[][]
  refs: { kind: 'spill'; file: string } | { kind: 'stored'; records: RecordOnDisk[] }
}

/** One prefix decided: its references (text only when read from the spill) and its outcome (undefined: no line, no reference). */
export interface PrefixDecision {
  refsText: string | undefined
  refsSha: string
  refsCount: number
  outcome: string | undefined
  maxOld: bigint | undefined
  minYoung: bigint | undefined
}

export type DecideReply = { id: number; decisions: PrefixDecision[] } | { id: number; doubt: string } | { id: number; error: string }

/** Raised when a worker found stored bytes that do not check out: the pass starts over on the main thread, which handles it. */
export class ParallelDoubt extends Error {}

/** Prefixes per chunk: one reference partition file of the spill's 256. */
export const CHUNK = 16

/**
 * Decides the prefixes of a pass in worker threads (one per CPU, at most
 * 4), a chunk of {@link CHUNK} prefixes at a time, handing the results back
 * in prefix order: the main thread keeps the order-dependent work (store
 * records, change sets, totals, lost blocks, confirmed replication) and is
 * otherwise free to read. Deciding — parsing stored lines, joining
 * references, placing every block — was 70 % of a 10 M-block first run,
 * and it ran on one core of two.
 */
export class DecidePool {
  private readonly workers: Worker[]
  private readonly pending = new Map<number, { resolve(d: PrefixDecision[]): void; reject(err: Error): void }>()
  private readonly chunks: Array<Promise<PrefixDecision[]> | undefined>
  private next = 0
  private failure: Error | undefined

  constructor(
    init: DecideInit,
    private readonly sourceRecords: ReadonlyArray<readonly StoredRecord[]>,
    private readonly refs: ReferencesOnDisk,
    private readonly locate: (record: StoredRecord) => string,
    threads = Math.min(4, availableParallelism()),
  ) {
    this.chunks = new Array(PREFIX_COUNT / CHUNK)
    this.workers = Array.from({ length: Math.max(1, threads) }, () => {
      const worker = new Worker(new URL('./decide-worker.js', import.meta.url), { workerData: init, resourceLimits: { maxYoungGenerationSizeMb: 96 } })
      worker.on('message', (reply: DecideReply) => this.settle(reply))
      worker.on('error', (err) => this.fail(err))
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`a decide worker thread exited with code ${code}`))
      })
      return worker
    })
  }

  /** The decisions of prefix `i`; ask in increasing order (chunks are sent ahead, two per thread). */
  async decision(i: number): Promise<PrefixDecision> {
    const c = Math.floor(i / CHUNK)
    while (this.next < this.chunks.length && this.next < c + 2 * this.workers.length) this.send(this.next++)
    const decisions = await this.chunks[c]!
    if (i % CHUNK === CHUNK - 1) this.chunks[c] = undefined
    return decisions[i % CHUNK]!
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) p.reject(new Error('decide pool closed'))
    this.pending.clear()
    await Promise.all(this.workers.map((w) => w.terminate()))
  }

  private send(c: number): void {
    const first = c * CHUNK
    const onDisk = (r: StoredRecord): RecordOnDisk => ({ file: r.length === 0 ? '' : this.locate(r), offset: r.offset, length: r.length, sha256: r.sha256, count: r.count })
    const lines: RecordOnDisk[][] = []
    for (let j = 0; j < CHUNK; j++) lines.push(this.sourceRecords.map((records) => onDisk(records[first + j]!)))
    const refs: DecideChunk['refs'] =
      this.refs.kind === 'spill'
        ? { kind: 'spill', file: this.refs.files[(first * this.refs.files.length) / PREFIX_COUNT]! }
        : { kind: 'stored', records: this.refs.records.slice(first, first + CHUNK).map(onDisk) }
    const chunk: DecideChunk = { id: c, first, count: CHUNK, lines, refs }
    const promise = new Promise<PrefixDecision[]>((resolve, reject) => {
      if (this.failure !== undefined) return reject(this.failure)
      this.pending.set(c, { resolve, reject })
    })
    promise.catch(() => {}) // awaited by decision()
    this.chunks[c] = promise
    if (this.failure === undefined) this.workers[c % this.workers.length]!.postMessage(chunk)
  }

  private settle(reply: DecideReply): void {
    const p = this.pending.get(reply.id)
    if (p === undefined) return
    this.pending.delete(reply.id)
    if ('decisions' in reply) p.resolve(reply.decisions)
    else if ('doubt' in reply) p.reject(new ParallelDoubt(reply.doubt))
    else p.reject(new Error(`deciding prefixes in a worker thread: ${reply.error}`))
  }

  private fail(err: Error): void {
    this.failure ??= err
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }
}
