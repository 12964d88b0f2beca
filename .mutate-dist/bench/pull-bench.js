/**
 * `node dist/bench/pull-bench.js`: how fast a keepstore works through a pull
 * list, against a bare GET-from-A + PUT-to-B loop at the same concurrency.
 * Two keepstores (child processes, directory volumes, one cluster config);
 * N distinct blocks are PUT into A, then per round: B empty → bare loop
 * copies them all; B empty again → B gets a pull list of them all, timed
 * until GET /pull shows nothing queued or in progress, and B's index is checked.
 * Environment: BENCH_PULL_BLOCKS (1000), BENCH_PULL_BLOCK_SIZE (1MiB),
 * BENCH_PULL_CONCURRENCY (4, also written as pullConcurrency), BENCH_PULL_ROUNDS (2),
 * BENCH_CPU_PROF=1 (profile B), BENCH_TMP, BENCH_KEEP_TMP=1.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSize } from '../shared/duration.js';
import { KeepError } from '../shared/errors.js';
import { runMain } from '../shared/cli.js';
import { createBlockSource, MiB } from './blocks.js';
import { ADMIN_TOKEN, freePorts, killAll, keepstoreUuid, startKeepstoreChild, writeClusterConfig } from './children.js';
import { adminGet, createLoadAgent, putBlock } from './load.js';
import { TARGET_PULL_RATIO, copyLoop, pullAll } from './pull-steps.js';
const RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/results');
const env = process.env;
const settings = {
    blocks: Number(env.BENCH_PULL_BLOCKS ?? 1000),
    blockSize: parseSize(env.BENCH_PULL_BLOCK_SIZE ?? '1MiB', 'BENCH_PULL_BLOCK_SIZE'),
    concurrency: Number(env.BENCH_PULL_CONCURRENCY ?? 4),
    rounds: Number(env.BENCH_PULL_ROUNDS ?? 2),
    cpuProfile: env.BENCH_CPU_PROF === '1',
};
const say = (s) => void process.stderr.write(`${s}\n`);
/** B's index as a set of `<hash>+<size>`; throws unless it ends with the empty line. */
async function indexOf(agent, url) {
    const text = (await adminGet(agent, url, '/index', ADMIN_TOKEN)).toString('utf8');
    if (!text.endsWith('\n\n') && text !== '\n')
        throw new KeepError('KEEP_INTERNAL', `${url}/index: no final empty line`);
    return new Set(text.split('\n').filter(Boolean).map((line) => line.split(' ')[0]));
}
await runMain(async () => {
    const tmp = mkdtempSync(path.join(env.BENCH_TMP ?? os.tmpdir(), 'keep-pull-bench-'));
    // Ctrl-C or a closed pipe skips the finally below: still leave no data behind.
    process.once('exit', () => {
        killAll();
        if (env.BENCH_KEEP_TMP !== '1')
            rmSync(tmp, { recursive: true, force: true });
    });
    const stamp = new Date().toISOString();
    const agent = createLoadAgent();
    const ports = await freePorts(2);
    const specs = ['a', 'b'].map((name, i) => ({
        uuid: keepstoreUuid(i),
        port: ports[i],
        root: path.join(tmp, name, 'volume'),
        stateDir: path.join(tmp, name, 'state'),
    }));
    const config = writeClusterConfig(tmp, specs, { pullConcurrency: settings.concurrency });
    const urls = specs.map((s) => `http://127.0.0.1:${s.port}`);
    const profDir = path.join(tmp, 'profile');
    const start = (i, profile = false) => startKeepstoreChild({
        config,
        uuid: specs[i].uuid,
        url: urls[i],
        logFile: path.join(tmp, `keepstore-${i}.log`),
        ...(profile ? { cpuProfDir: profDir } : {}),
    });
    const servers = [];
    /** B with an empty volume and an empty state database; `profile` only for the pull runs (BENCH_CPU_PROF). */
    const freshB = async (profile = false) => {
        if (servers[1])
            await servers[1].stop();
        rmSync(path.dirname(specs[1].root), { recursive: true, force: true });
        mkdirSync(specs[1].root, { recursive: true });
        servers[1] = await start(1, profile && settings.cpuProfile);
        return servers[1];
    };
    const rounds = [];
    try {
        servers[0] = await start(0);
        say(`pull bench: ${settings.blocks} × ${settings.blockSize / MiB} MiB blocks, concurrency ${settings.concurrency}, ${settings.rounds} rounds (load average ${os.loadavg()[0].toFixed(2)}); data in ${tmp}`);
        const source = createBlockSource(settings.blockSize);
        const locators = [];
        await Promise.all(Array.from({ length: 8 }, async () => {
            while (locators.length < settings.blocks) {
                const i = locators.push('') - 1;
                locators[i] = await putBlock(agent, urls[0], source.next(), ADMIN_TOKEN);
            }
        }));
        const plain = locators.map((l) => l.split('+').slice(0, 2).join('+'));
        for (let r = 0; r < settings.rounds; r++) {
            const loopB = await freshB();
            const loopSeconds = await copyLoop(agent, urls[0], loopB.url, locators, settings.blockSize, settings.concurrency);
            const afterLoop = await indexOf(agent, loopB.url);
            if (!plain.every((l) => afterLoop.has(l)))
                throw new KeepError('KEEP_INTERNAL', 'bare loop: B is missing blocks');
            const pullB = await freshB(true);
            const { seconds: pullSeconds, status } = await pullAll(agent, pullB.url, plain, urls[0]);
            const afterPull = await indexOf(agent, pullB.url);
            const missing = plain.filter((l) => !afterPull.has(l)).length;
            if (missing > 0)
                throw new KeepError('KEEP_INTERNAL', `pull list: B's index lacks ${missing} of ${plain.length} blocks (status ${JSON.stringify(status)})`);
            say(`  round ${r + 1}: bare loop ${loopSeconds.toFixed(2)} s, pull list ${pullSeconds.toFixed(2)} s (${JSON.stringify(status)})`);
            rounds.push({ loopSeconds, pullSeconds, pullStatus: status });
        }
    }
    finally {
        await Promise.all(servers.map((s) => s.stop()));
        await agent.close();
        if (settings.cpuProfile && existsSync(profDir)) {
            // Each pull run's B writes a profile when it stops; names sort by time: keep the last.
            const file = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')).sort().at(-1);
            if (file) {
                mkdirSync(RESULTS, { recursive: true });
                copyFileSync(path.join(profDir, file), path.join(RESULTS, `${stamp.replace(/[:.]/g, '-')}-pull-b.cpuprofile`));
            }
        }
        if (env.BENCH_KEEP_TMP !== '1')
            rmSync(tmp, { recursive: true, force: true });
    }
    const loop = rounds.reduce((n, r) => n + r.loopSeconds, 0);
    const pull = rounds.reduce((n, r) => n + r.pullSeconds, 0);
    const ratio = loop / pull;
    const mb = (settings.blocks * settings.blockSize * rounds.length) / 1e6;
    process.stdout.write(`\npull bench: ${settings.blocks} × ${settings.blockSize / MiB} MiB, concurrency ${settings.concurrency}, ${rounds.length} rounds\n` +
        `  bare GET-from-A + PUT-to-B loop: ${loop.toFixed(2)} s (${(mb / loop).toFixed(1)} MB/s)\n` +
        `  pull list on B:                  ${pull.toFixed(2)} s (${(mb / pull).toFixed(1)} MB/s)\n` +
        `  ratio (pull throughput / loop):  ${ratio.toFixed(2)} (target ≥ ${TARGET_PULL_RATIO}) ${ratio >= TARGET_PULL_RATIO ? 'PASS' : 'MISS'}\n`);
    mkdirSync(RESULTS, { recursive: true });
    const file = path.join(RESULTS, `${stamp.replace(/[:.]/g, '-')}-pull.json`);
    writeFileSync(file, `${JSON.stringify({ startedAt: stamp, settings, rounds, loopSeconds: loop, pullSeconds: pull, ratio, pass: ratio >= TARGET_PULL_RATIO, load: os.loadavg() }, null, 2)}\n`);
    process.stdout.write(`results: ${path.relative(process.cwd(), file)}\n`);
});
//# sourceMappingURL=pull-bench.js.map