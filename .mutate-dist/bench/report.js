import { MiB } from './blocks.js';
/** Minimum keepstore/baseline ratios from the issue, by `<case> <op>`. */
export const RATIO_TARGETS = {
    '4 KiB PUT': 0.7,
    '4 KiB GET': 0.8,
    '64 MiB PUT': 0.9,
    '64 MiB GET': 0.9,
};
export const INDEX_TARGET = 0.5;
export const RSS_GROWTH_TARGET = 256 * MiB;
function verdict(name, value, target, kind) {
    return { name, value, target, kind, pass: kind === 'min' ? value >= target : value <= target };
}
export function verdicts(phases, index, memory) {
    const out = [];
    for (const [name, target] of Object.entries(RATIO_TARGETS)) {
        const of = (t) => phases.find((p) => `${p.case} ${p.op}` === name && p.target === t);
        const base = of('baseline');
        const keep = of('keepstore');
        if (base && keep)
            out.push(verdict(name, keep.result.megabytesPerSecond / base.result.megabytesPerSecond, target, 'min'));
    }
    if (index)
        out.push(verdict('index vs find', index.ratio, INDEX_TARGET, 'min'));
    if (memory)
        out.push(verdict('RSS growth, 32×64 MiB PUT', memory.growth, RSS_GROWTH_TARGET, 'max'));
    return out;
}
const fmt = (n, digits = 1) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mib = (n) => `${fmt(n / MiB, 0)} MiB`;
function table(rows) {
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    const line = (r) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
    const rule = widths.map((w) => '-'.repeat(w)).join('  ');
    return [line(rows[0]), rule, ...rows.slice(1).map(line)].join('\n');
}
/** The human-readable result: throughput side by side, index, memory, verdicts. */
export function renderReport(phases, index, memory, baselineMemory) {
    const rows = [['case', 'op', 'base req/s', 'base MB/s', 'keep req/s', 'keep MB/s', 'ratio', 'target', 'verdict', 'cpu ms/req base', 'keep']];
    const ratios = new Map(verdicts(phases, undefined, undefined).map((v) => [v.name, v]));
    for (const p of phases) {
        if (p.target !== 'keepstore')
            continue;
        const base = phases.find((b) => b.target === 'baseline' && b.case === p.case && b.op === p.op);
        const v = ratios.get(`${p.case} ${p.op}`);
        rows.push([
            p.case,
            p.op,
            base ? fmt(base.result.requestsPerSecond) : '-',
            base ? fmt(base.result.megabytesPerSecond) : '-',
            fmt(p.result.requestsPerSecond),
            fmt(p.result.megabytesPerSecond),
            v ? fmt(v.value, 2) : '-',
            v ? `≥ ${fmt(v.target, 2)}` : '-',
            v ? (v.pass ? 'PASS' : 'MISS') : '-',
            base ? fmt(base.serverCpuMsPerRequest, 2) : '-',
            fmt(p.serverCpuMsPerRequest, 2),
        ]);
    }
    const out = rows.length > 1 ? [table(rows)] : [];
    if (index) {
        const v = verdict('index', index.ratio, INDEX_TARGET, 'min');
        out.push(`\nindex over ${index.blocks.toLocaleString('en-US')} blocks (best of ${index.indexSeconds.length}): ` +
            `GET /index ${fmt(index.index.seconds, 3)} s (${fmt(index.blocks / index.index.seconds / 1000, 0)} k lines/s), ` +
            `find -printf ${fmt(index.find.seconds, 3)} s (${fmt(index.blocks / index.find.seconds / 1000, 0)} k/s); ` +
            `ratio ${fmt(index.ratio, 2)} (target ≥ ${INDEX_TARGET}) ${v.pass ? 'PASS' : 'MISS'}`);
    }
    if (memory) {
        const v = verdict('rss', memory.growth, RSS_GROWTH_TARGET, 'max');
        out.push(`\nkeepstore RSS, ${memory.puts} concurrent ${mib(memory.blockSize)} PUTs: idle ${mib(memory.idleRss)}, peak ${mib(memory.peakRss)}, ` +
            `growth ${mib(memory.growth)} (target ≤ ${mib(RSS_GROWTH_TARGET)}) ${v.pass ? 'PASS' : 'MISS'}` +
            (baselineMemory ? `; baseline: idle ${mib(baselineMemory.idleRss)}, peak ${mib(baselineMemory.peakRss)}, growth ${mib(baselineMemory.growth)}` : ''));
    }
    return out.join('\n');
}
//# sourceMappingURL=report.js.map