import type { Logger } from '../shared/logger.js'
import { balanceBlock, type BalancePolicy, type BlockState } from './balance.js'
import { addDecision, createTotals, type BalanceTotals } from './balance-report.js'
import { ChangeSets, type ChangeSetLimits } from './change-sets.js'
import { createAtomicWriter, type AtomicWriter } from './atomic-file.js'
import type { ConfirmedTracker } from './confirmed.js'
import { openIndex, spillIndex, type DatamanagerClient, type IndexSource, type IndexStatus } from './indexes.js'
import { mergeBlocks } from './merge.js'
import type { Progress } from './progress.js'
import type { ReferenceSpill, ReferencedBlock } from './references.js'
import type { ServerMounts } from './sanity.js'
import type { Spill } from './spill.js'
import type { Topology } from './topology.js'

export interface PassInput {
  client: DatamanagerClient
  /** Servers that answered `GET /mounts` (their `mounts` set). */
  servers: readonly ServerMounts[]
  topology: Topology
  policy: BalancePolicy
  limits: ChangeSetLimits
  references: ReferenceSpill
  spill: Spill
  /** Target of the lost-blocks file; the pass writes its temporary file, the run commits or drops it. */
  lostFile: string
  progress: Progress
  logger: Logger
  /** The run's deadline: aborts every index read in flight and stops the merge (the run then refuses). */
  signal?: AbortSignal
  /** Told each referenced block's held replication (for `collections-confirmed.jsonl`); absent in a dry run. */
  confirmed?: ConfirmedTracker
}

export interface PassResult {
  totals: BalanceTotals
  changeSets: ChangeSets
  indexes: IndexStatus[]
  referencedBlocks: number
  blocks: number
  lines: number
  lost: AtomicWriter
}

const PROGRESS_EVERY = 1 << 16

/**
 * Streams every mount's index and the references through `balanceBlock`,
 * block by block in hash order, collecting change sets, totals and the
 * lost-blocks file. An index found unsorted stops the pass; the pass then
 * starts over with that index spilled to `level` first (indexes are
 * fetched again: a second read beats holding one in memory).
 */
export async function balancePass(input: PassInput): Promise<PassResult> {
  const spilled = new Set<string>()
  for (let attempt = 0; ; attempt++) {
    const result = await onePass(input, spilled, attempt)
    if (input.signal?.aborted) return result
    const unsorted = result.indexes.filter((i) => i.state === 'unsorted')
    if (unsorted.length === 0) return result
    await result.lost.abort()
    for (const i of unsorted) {
      spilled.add(`${i.server}/${i.mount}`)
      input.logger.warn({ server: i.server, mount: i.mount }, 'index not sorted: spilling it to disk and starting over')
    }
  }
}

async function onePass(input: PassInput, spilled: ReadonlySet<string>, attempt: number): Promise<PassResult> {
  const { topology, policy, progress } = input
  const ac = new AbortController()
  const stop = (): void => ac.abort()
  input.signal?.addEventListener('abort', stop, { once: true })
  if (input.signal?.aborted) ac.abort()
  const sources: IndexSource[] = []
  let n = 0
  for (const server of input.servers) {
    for (const mount of server.mounts ?? []) {
      if (spilled.has(`${server.uuid}/${mount.uuid}`)) {
        const db = await input.spill.open(`index-${attempt}-${n++}`)
        sources.push(await spillIndex(input.client, server, mount.uuid, db, { signal: ac.signal }))
      } else {
        sources.push(openIndex(input.client, server, mount.uuid, { signal: ac.signal, onUnsorted: () => ac.abort() }))
      }
    }
  }
  const totals = createTotals()
  const changeSets = new ChangeSets(topology.servers, input.limits)
  const lost = await createAtomicWriter(input.lostFile)
  let referencedBlocks = 0
  let seen = 0
  progress.phase('balancing', 0x10000)
  input.confirmed?.startBlocks()
  const visit = (block: BlockState, reference: ReferencedBlock | undefined): void | Promise<void> => {
    const decision = balanceBlock(block, topology, policy)
    addDecision(totals, block, decision)
    changeSets.add(decision, block.size)
    if ((++seen & (PROGRESS_EVERY - 1)) === 0) {
      progress.update(parseInt(block.hash.slice(0, 4), 16), `${seen} blocks`)
    }
    if (reference === undefined) return undefined
    referencedBlocks++
    const confirming = input.confirmed?.addBlock(reference, decision.counts?.held)
    if (decision.category === 'lost') {
      const written = lost.write(`${block.hash}+${block.size} ${reference.collections}\n`)
      return confirming === undefined ? written : Promise.all([confirming, written]).then(() => undefined)
    }
    return confirming
  }
  try {
    const merged = await mergeBlocks(sources, input.references.blocks(), visit, { signal: ac.signal })
    return {
      totals,
      changeSets,
      indexes: sources.map((s) => s.status),
      referencedBlocks,
      blocks: merged.blocks,
      lines: merged.lines,
      lost,
    }
  } catch (err) {
    await lost.abort()
    throw err
  } finally {
    input.signal?.removeEventListener('abort', stop)
  }
}
