import type { Agent } from 'undici'
import { KeepError } from '../shared/errors.js'
import { createBlockSource, GiB } from './blocks.js'
import { cpuSecondsOf, type ChildServer } from './children.js'
import { getBlock, putBlock, runPhase, summarize, type Job, type PhaseLimits, type PhaseResult, type PhaseSample } from './load.js'

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
  /** Which repetition of the throughput part (BENCH_REPEAT) measured it. */
  run: number
}

/** GETs cycle over at most this much of what the PUT phase stored, so both servers read from the page cache. */
const GET_WORKING_SET = 1 * GiB

interface Tally {
  samples: PhaseSample[]
  cpuSeconds: number
}

/**
 * For each case: PUT on every target, then GET on every target. Each phase is
 * split into `rounds` slices that alternate between the targets (ABBA…), so a
 * change in the machine's background load during the run hits both sides
 * alike; the slices add up to the phase limits. A target's GETs read back
 * blocks its own PUTs stored, by the locators the server returned (signed,
 * for the keepstore).
 */
export async function runThroughput(
  agent: Agent,
  targets: Target[],
  cases: LoadCase[],
  limits: PhaseLimits & { rounds: number },
  onPhase: (record: PhaseRecord) => void,
  run = 0,
): Promise<PhaseRecord[]> {
  const records: PhaseRecord[] = []
  const slice: PhaseLimits = { seconds: limits.seconds / limits.rounds, maxBytes: limits.maxBytes / limits.rounds }
  const phase = async (c: LoadCase, op: PhaseRecord['op'], job: (target: Target) => Job): Promise<void> => {
    const tallies = new Map<Target, Tally>(targets.map((t) => [t, { samples: [], cpuSeconds: 0 }]))
    for (let r = 0; r < limits.rounds; r++) {
      for (const target of r % 2 === 0 ? targets : [...targets].reverse()) {
        const tally = tallies.get(target)!
        const cpu0 = cpuSecondsOf(target.server.pid)
        const done = tally.samples.reduce((n, s) => n + s.latencies.length, 0)
        const sample = await runPhase(c.concurrency, slice, job(target), done).catch((err: unknown) => {
          // Say which server failed: undici's errors ("other side closed") do not.
          throw new KeepError('KEEP_INTERNAL', `${c.label} ${op} on the ${target.name}: ${(err as Error).message}`, { cause: err })
        })
        tally.samples.push(sample)
        tally.cpuSeconds += cpuSecondsOf(target.server.pid) - cpu0
      }
    }
    for (const target of targets) {
      const { samples, cpuSeconds } = tallies.get(target)!
      const result = summarize(samples)
      const record = { case: c.label, op, target: target.name, result, serverCpuSeconds: cpuSeconds, serverCpuMsPerRequest: (cpuSeconds * 1000) / result.requests, run }
      records.push(record)
      onPhase(record)
    }
  }
  for (const c of cases) {
    const source = createBlockSource(c.size)
    const stored = new Map<Target, string[]>(targets.map((t) => [t, []]))
    await phase(c, 'PUT', (target) => async () => {
      const block = source.next()
      stored.get(target)!.push(await putBlock(agent, target.server.url, block, target.token))
      return block.size
    })
    const sets = new Map<Target, string[]>(targets.map((t) => [t, stored.get(t)!.slice(0, Math.max(1, Math.floor(GET_WORKING_SET / c.size)))]))
    await phase(c, 'GET', (target) => {
      const set = sets.get(target)!
      return (_w, n) => getBlock(agent, target.server.url, set[n % set.length]!, c.size, target.token)
    })
  }
  return records
}

/** A short unmeasured run of every case on every target, so JIT and caches are warm before the first phase. */
export async function warmUp(agent: Agent, targets: Target[], cases: LoadCase[], seconds: number): Promise<void> {
  await runThroughput(agent, targets, cases, { seconds, maxBytes: 256 * 1024 * 1024, rounds: 1 }, () => undefined)
}
