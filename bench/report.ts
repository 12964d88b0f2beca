import type { IndexBenchResult } from './index-bench.js'
import type { MemoryResult } from './memory-bench.js'
import type { PhaseRecord } from './throughput.js'
import { MiB } from './blocks.js'

/** One line of the verdict: a measured ratio (or size) against the target. */
export interface Verdict {
  name: string
  value: number
  target: number
  /** 'min': value must be ≥ target; 'max': value must be ≤ target. */
  kind: 'min' | 'max'
  pass: boolean
}

/** Minimum keepstore/baseline ratios from the issue (13), by `<case> <op>`. */
export const RATIO_TARGETS: Record<string, number> = {
  '4 KiB PUT': 0.8,
  '4 KiB GET': 0.9,
  '64 MiB PUT': 0.95,
  '64 MiB GET': 0.95,
}
/** find's time / GET /index's time on the same volume. */
export const INDEX_TARGET = 1.0
export const RSS_GROWTH_TARGET = 256 * MiB

function verdict(name: string, value: number, target: number, kind: Verdict['kind']): Verdict {
  return { name, value, target, kind, pass: kind === 'min' ? value >= target : value <= target }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** keepstore/baseline MB/s of each run of one `<case> <op>` (runs pair the two servers measured together). */
export function runRatios(phases: PhaseRecord[], name: string): number[] {
  const of = (t: PhaseRecord['target']): PhaseRecord[] => phases.filter((p) => `${p.case} ${p.op}` === name && p.target === t)
  const base = of('baseline')
  const keep = of('keepstore')
  return keep.flatMap((k) => {
    const b = base.find((x) => x.run === k.run)
    return b ? [k.result.megabytesPerSecond / b.result.megabytesPerSecond] : []
  })
}

/** Verdicts on the median ratio of the runs. */
export function verdicts(phases: PhaseRecord[], index: IndexBenchResult | undefined, memory: MemoryResult | undefined): Verdict[] {
  const out: Verdict[] = []
  for (const [name, target] of Object.entries(RATIO_TARGETS)) {
    const ratios = runRatios(phases, name)
    if (ratios.length) out.push(verdict(name, median(ratios), target, 'min'))
  }
  if (index) out.push(verdict('index vs find', index.ratio, INDEX_TARGET, 'min'))
  if (memory) out.push(verdict('RSS growth, 32×64 MiB PUT', memory.growth, RSS_GROWTH_TARGET, 'max'))
  return out
}

const fmt = (n: number, digits = 1): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const mib = (n: number): string => `${fmt(n / MiB, 0)} MiB`

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const line = (r: string[]): string => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  const rule = widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join('\n')
}

/** The human-readable result: throughput side by side (medians over the runs), index, memory, verdicts. */
export function renderReport(phases: PhaseRecord[], index: IndexBenchResult | undefined, memory: MemoryResult | undefined, baselineMemory?: MemoryResult): string {
  const rows: string[][] = [['case', 'op', 'base MB/s', 'keep MB/s', 'ratio', 'runs', 'target', 'verdict', 'cpu ms/req base', 'keep']]
  const ratios = new Map(verdicts(phases, undefined, undefined).map((v) => [v.name, v]))
  const names = [...new Set(phases.map((p) => `${p.case} ${p.op}`))]
  for (const name of names) {
    const of = (t: PhaseRecord['target']): PhaseRecord[] => phases.filter((p) => `${p.case} ${p.op}` === name && p.target === t)
    const med = (records: PhaseRecord[], f: (p: PhaseRecord) => number): string => (records.length ? fmt(median(records.map(f)), 2) : '-')
    const base = of('baseline')
    const keep = of('keepstore')
    const v = ratios.get(name)
    rows.push([
      keep[0]?.case ?? base[0]?.case ?? '',
      keep[0]?.op ?? base[0]?.op ?? '',
      med(base, (p) => p.result.megabytesPerSecond),
      med(keep, (p) => p.result.megabytesPerSecond),
      v ? fmt(v.value, 2) : '-',
      runRatios(phases, name).map((r) => fmt(r, 2)).join(' '),
      v ? `≥ ${fmt(v.target, 2)}` : '-',
      v ? (v.pass ? 'PASS' : 'MISS') : '-',
      med(base, (p) => p.serverCpuMsPerRequest),
      med(keep, (p) => p.serverCpuMsPerRequest),
    ])
  }
  const out = rows.length > 1 ? [table(rows)] : []
  if (index) {
    const v = verdict('index', index.ratio, INDEX_TARGET, 'min')
    out.push(
      `\nindex over ${index.blocks.toLocaleString('en-US')} blocks (best of ${index.indexSeconds.length}; the first GET /index, with a cold index cache, took ${fmt(index.indexSeconds[0] ?? NaN, 3)} s): ` +
        `GET /index ${fmt(index.index.seconds, 3)} s (${fmt(index.blocks / index.index.seconds / 1000, 0)} k lines/s), ` +
        `find -printf ${fmt(index.find.seconds, 3)} s (${fmt(index.blocks / index.find.seconds / 1000, 0)} k/s); ` +
        `ratio ${fmt(index.ratio, 2)} (target ≥ ${INDEX_TARGET}) ${v.pass ? 'PASS' : 'MISS'}`,
    )
  }
  if (memory) {
    const v = verdict('rss', memory.growth, RSS_GROWTH_TARGET, 'max')
    out.push(
      `\nkeepstore RSS, ${memory.puts} concurrent ${mib(memory.blockSize)} PUTs: idle ${mib(memory.idleRss)}, peak ${mib(memory.peakRss)}, ` +
        `growth ${mib(memory.growth)} (target ≤ ${mib(RSS_GROWTH_TARGET)}) ${v.pass ? 'PASS' : 'MISS'}` +
        (baselineMemory ? `; baseline: idle ${mib(baselineMemory.idleRss)}, peak ${mib(baselineMemory.peakRss)}, growth ${mib(baselineMemory.growth)}` : ''),
    )
  }
  return out.join('\n')
}
