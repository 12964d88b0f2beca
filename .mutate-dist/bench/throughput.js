import { createBlockSource, GiB } from './blocks.js';
import { cpuSecondsOf } from './children.js';
import { getBlock, putBlock, runPhase, summarize } from './load.js';
/** GETs cycle over at most this much of what the PUT phase stored, so both servers read from the page cache. */
const GET_WORKING_SET = 1 * GiB;
/**
 * For each case: PUT on every target, then GET on every target. Each phase is
 * split into `rounds` slices that alternate between the targets (ABBA…), so a
 * change in the machine's background load during the run hits both sides
 * alike; the slices add up to the phase limits. A target's GETs read back
 * blocks its own PUTs stored, by the locators the server returned (signed,
 * for the keepstore).
 */
export async function runThroughput(agent, targets, cases, limits, onPhase) {
    const records = [];
    const slice = { seconds: limits.seconds / limits.rounds, maxBytes: limits.maxBytes / limits.rounds };
    const phase = async (c, op, job) => {
        const tallies = new Map(targets.map((t) => [t, { samples: [], cpuSeconds: 0 }]));
        for (let r = 0; r < limits.rounds; r++) {
            for (const target of r % 2 === 0 ? targets : [...targets].reverse()) {
                const tally = tallies.get(target);
                const cpu0 = cpuSecondsOf(target.server.pid);
                const done = tally.samples.reduce((n, s) => n + s.latencies.length, 0);
                tally.samples.push(await runPhase(c.concurrency, slice, job(target), done));
                tally.cpuSeconds += cpuSecondsOf(target.server.pid) - cpu0;
            }
        }
        for (const target of targets) {
            const { samples, cpuSeconds } = tallies.get(target);
            const result = summarize(samples);
            const record = { case: c.label, op, target: target.name, result, serverCpuSeconds: cpuSeconds, serverCpuMsPerRequest: (cpuSeconds * 1000) / result.requests };
            records.push(record);
            onPhase(record);
        }
    };
    for (const c of cases) {
        const source = createBlockSource(c.size);
        const stored = new Map(targets.map((t) => [t, []]));
        await phase(c, 'PUT', (target) => async () => {
            const block = source.next();
            stored.get(target).push(await putBlock(agent, target.server.url, block, target.token));
            return block.size;
        });
        const sets = new Map(targets.map((t) => [t, stored.get(t).slice(0, Math.max(1, Math.floor(GET_WORKING_SET / c.size)))]));
        await phase(c, 'GET', (target) => {
            const set = sets.get(target);
            return (_w, n) => getBlock(agent, target.server.url, set[n % set.length], c.size, target.token);
        });
    }
    return records;
}
/** A short unmeasured run of every case on every target, so JIT and caches are warm before the first phase. */
export async function warmUp(agent, targets, cases, seconds) {
    await runThroughput(agent, targets, cases, { seconds, maxBytes: 256 * 1024 * 1024, rounds: 1 }, () => undefined);
}
//# sourceMappingURL=throughput.js.map