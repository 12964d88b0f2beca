/**
 * `node dist/bench/profile-summary.js FILE.cpuprofile [N]`: where a V8 CPU
 * profile (from `node --cpu-prof`, e.g. BENCH_CPU_PROF=1) spends its time —
 * the top N functions by self time and by total (inclusive) time, and self
 * time per file — so a cost can be named as file:function.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runMain } from '../shared/cli.js';
import { KeepError } from '../shared/errors.js';
const ROOT = path.resolve(process.cwd());
function where(node) {
    const { functionName, url, lineNumber } = node.callFrame;
    let file = url.replace(/^file:\/\//, '');
    if (file.startsWith(ROOT))
        file = path.relative(ROOT, file);
    file = file.replace(/^node_modules\//, '~/');
    return { fn: `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`, file: file || functionName };
}
/** Self and inclusive microseconds per function, self per file, and the total. */
export function summarizeProfile(profile) {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of profile.nodes)
        for (const c of n.children ?? [])
            parent.set(c, n.id);
    const self = new Map();
    const inclusive = new Map();
    const files = new Map();
    const add = (m, k, v) => void m.set(k, (m.get(k) ?? 0) + v);
    let total = 0;
    profile.samples.forEach((id, i) => {
        const dt = profile.timeDeltas[i] ?? 0;
        const node = byId.get(id);
        if (!node)
            return;
        total += dt;
        const w = where(node);
        add(self, w.fn, dt);
        add(files, w.file, dt);
        const seen = new Set();
        for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
            const fn = where(byId.get(cur)).fn;
            if (!seen.has(fn))
                add(inclusive, fn, dt);
            seen.add(fn);
        }
    });
    return { total, self, inclusive, files };
}
function top(m, total, n, title) {
    const rows = [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
    return [`${title}`, ...rows.map(([k, v]) => `${((100 * v) / total).toFixed(1).padStart(6)} %  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`)].join('\n');
}
await runMain(async () => {
    const file = process.argv[2];
    if (!file)
        throw new KeepError('KEEP_BAD_REQUEST', 'usage: profile-summary FILE.cpuprofile [N]');
    const n = Number(process.argv[3] ?? 25);
    const { total, self, inclusive, files } = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')));
    const busy = total - (self.get('(idle)') ?? 0);
    process.stdout.write([
        `${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s not idle`,
        top(self, total, n, '\nself time by function'),
        top(inclusive, total, n, '\ntotal time by function (callees included)'),
        top(files, total, n, '\nself time by file'),
    ].join('\n') + '\n');
});
//# sourceMappingURL=profile-summary.js.map