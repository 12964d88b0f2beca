import type { Agent } from 'undici'
import { createBlockSource, GiB } from './blocks.js'
import { cpuSecondsOf, type ChildServer } from './children.js'
import { getBlock, putBlock, runPhase, type PhaseLimits, type PhaseResult } from './load.js'

/** A server under load; `token` is sent with every request (the keepstore signs PUT replies with it and checks it on GET). */
export interface Target {
  name: 'baseline' | 'keepstore'
  server: ChildServer
  token?: string
}

/** One block size at one concurrency, as the issue fixes them. */
export interface LoadCase {
  label: string
  size: number
  concurrency: number
}

export interface PhaseRecord {
  case: string
  op: 'PUT' | 'GET'
  target: Target['name']
  result: PhaseResult
  /** CPU the server process used during the phase, in seconds, and per request in ms. */
  serverCpuSeconds: number
  serverCpuMsPerRequest: number
}

/** GETs cycle over at most this much of what the PUT phase stored, so both servers read from the page cache. */
const GET_WORKING_SET = 1 * GiB

/**
 * For each case: PUT on every target, then GET on every target, each a full
 * phase with the same limits. A target's GETs read back blocks its own PUT
 * phase stored, by the locators the server returned (signed, for the keepstore).
 */
export async function runThroughput(
  agent: Agent,
  targets: Target[],
  cases: LoadCase[],
  limits: PhaseLimits,
  onPhase: (record: PhaseRecord) => void,
): Promise<PhaseRecord[]> {
  const records: PhaseRecord[] = []
  const measure = async (c: LoadCase, op: PhaseRecord['op'], target: Target, job: (w: number, n: number) => Promise<number>): Promise<void> => {
    const cpu0 = cpuSecondsOf(target.server.pid)
    const result = await runPhase(c.concurrency, limits, job)
    const serverCpuSeconds = cpuSecondsOf(target.server.pid) - cpu0
    const record = { case: c.label, op, target: target.name, result, serverCpuSeconds, serverCpuMsPerRequest: (serverCpuSeconds * 1000) / result.requests }
    records.push(record)
    onPhase(record)
  }
  for (const c of cases) {
    const source = createBlockSource(c.size)
    const stored = new Map<Target, string[]>()
    for (const target of targets) {
      const locators: string[] = []
      stored.set(target, locators)
      await measure(c, 'PUT', target, async () => {
        const block = source.next()
        locators.push(await putBlock(agent, target.server.url, block, target.token))
        return block.size
      })
    }
    for (const target of targets) {
      const all = stored.get(target)!
      const set = all.slice(0, Math.max(1, Math.floor(GET_WORKING_SET / c.size)))
      await measure(c, 'GET', target, (_w, n) => getBlock(agent, target.server.url, set[n % set.length]!, c.size, target.token))
    }
  }
  return records
}

/** A short unmeasured run of every case on every target, so JIT and caches are warm before the first phase. */
export async function warmUp(agent: Agent, targets: Target[], cases: LoadCase[], seconds: number): Promise<void> {
  await runThroughput(agent, targets, cases, { seconds, maxBytes: 256 * 1024 * 1024 }, () => undefined)
}
