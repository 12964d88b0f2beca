/**
 * `node dist/bench/datamanager-bench.js [blocks…]` (default 1000000 10000000):
 * how the datamanager scales. For each size, three fake keepstores (child
 * processes, bench/fake-keepstore.ts) each hold every block (3 replicas),
 * a generated collections file references 90 % of them (80 % want 3 copies,
 * 10 % want 2: over-replicated; the rest is garbage), and
 * `bin/datamanager --once` runs as a child process against them, sending its
 * (capped) lists to the fakes. Prints index lines/s, blocks/s, peak RSS
 * (VmHWM) and the RSS ratio against the first size.
 * `DM_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"` profiles the datamanager child.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { blockHash, blockSize } from './fake-keepstore.js';
const here = path.dirname(fileURLToPath(import.meta.url));
const FAKE = path.join(here, 'fake-keepstore.js');
const DATAMANAGER = path.join(here, '../bin/datamanager.js');
const TOKEN = 'bench-admin-token-0123456789abcdefghijklmnop';
const PER_COLLECTION = 100;
/** A permutation of 0..n-1 (multiplication by a prime coprime with n), so references arrive in no particular hash order. */
function permuted(j, n) {
    const P = 2_147_483_647 % n === 0 ? 1_000_000_007 : 2_147_483_647;
    return Number((BigInt(j) * BigInt(P)) % BigInt(n));
}
async function writeCollections(file, n) {
    const out = createWriteStream(file);
    let locators = [];
    let collection = 0;
    const flush = async () => {
        const replication = collection % 9 === 8 ? 2 : 3;
        const uuid = `zzzzz-4zz18-${String(collection++).padStart(15, '0')}`;
        const manifest = `. ${locators.join(' ')} 0:${locators.length}:file.bin\n`;
        const line = `${JSON.stringify({ uuid, manifest_text: manifest, replication_desired: replication })}\n`;
        locators = [];
        if (!out.write(line))
            await new Promise((resolve) => out.once('drain', () => resolve()));
    };
    for (let j = 0; j < n; j++) {
        const i = permuted(j, n);
        if (i % 10 === 0)
            continue;
        locators.push(`${blockHash(i, n)}+${blockSize(i)}`);
        if (locators.length === PER_COLLECTION)
            await flush();
    }
    if (locators.length > 0)
        await flush();
    await new Promise((resolve, reject) => out.end((err) => (err ? reject(err) : resolve())));
}
async function startFake(n, mount, offset) {
    const child = spawn(process.execPath, [FAKE, String(n), mount, String(offset)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout });
    for await (const line of lines)
        return { child, port: JSON.parse(line).port };
    throw new Error('fake keepstore exited before listening');
}
function vmHwmKiB(pid, last) {
    return readFile(`/proc/${pid}/status`, 'utf8').then((text) => Math.max(last, Number(/VmHWM:\s+(\d+)/.exec(text)?.[1] ?? 0)), () => last);
}
async function runOnce(n) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dm-bench-'));
    try {
        process.stderr.write(`${n} blocks: generating collections…\n`);
        await writeCollections(path.join(dir, 'collections.jsonl'), n);
        const fakes = await Promise.all([0, 1, 2].map((k) => startFake(n, `zzzzz-nyw5e-00000000000000${k}`, k * 1_000_000)));
        try {
            const config = {
                cluster: { id: 'zzzzz', systemRootToken: TOKEN, blobSigning: false, blobSigningTTL: '1h', defaultReplication: 2 },
                keepstores: fakes.map((f, k) => ({
                    uuid: `zzzzz-bi6l4-00000000000000${k}`,
                    url: `http://127.0.0.1:${f.port}`,
                    volumes: [{ uuid: `zzzzz-nyw5e-00000000000000${k}`, driver: 'memory' }],
                })),
                datamanager: { collections: 'collections.jsonl', stateDir: 'state' },
            };
            await writeFile(path.join(dir, 'cluster.json'), JSON.stringify(config));
            process.stderr.write(`${n} blocks: running the datamanager…\n`);
            const started = performance.now();
            const nodeArgs = (process.env.DM_BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
            const child = spawn(process.execPath, [...nodeArgs, DATAMANAGER, '--config', path.join(dir, 'cluster.json'), '--once', '--log-level', 'warn'], {
                stdio: ['ignore', 'inherit', 'inherit'],
            });
            let peak = 0;
            const timer = setInterval(() => {
                void vmHwmKiB(child.pid, peak).then((v) => (peak = v));
            }, 100);
            const exitCode = await new Promise((resolve) => child.on('exit', (code) => resolve(code)));
            clearInterval(timer);
            const seconds = (performance.now() - started) / 1000;
            const report = JSON.parse(await readFile(path.join(dir, 'state', 'report.json'), 'utf8'));
            return {
                blocks: report.blocks,
                indexLines: report.indexLines,
                seconds,
                balanceSeconds: (report.timings?.balanceMs ?? 0) / 1000,
                peakRssMiB: peak / 1024,
                exitCode,
                categories: report.categories,
            };
        }
        finally {
            for (const f of fakes)
                f.child.kill('SIGTERM');
        }
    }
    finally {
        await rm(dir, { recursive: true, force: true });
    }
}
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const results = [];
for (const n of sizes.length > 0 ? sizes : [1_000_000, 10_000_000])
    results.push(await runOnce(n));
const first = results[0];
process.stdout.write('\nblocks      index lines  exit  total s  lines/s (total)  lines/s (balance)  blocks/s  peak RSS MiB  RSS vs first\n');
for (const r of results) {
    const row = [
        String(r.blocks).padEnd(11),
        String(r.indexLines).padEnd(12),
        String(r.exitCode).padEnd(5),
        r.seconds.toFixed(1).padEnd(8),
        String(Math.round(r.indexLines / r.seconds)).padEnd(16),
        String(r.balanceSeconds > 0 ? Math.round(r.indexLines / r.balanceSeconds) : '-').padEnd(18),
        String(Math.round(r.blocks / r.seconds)).padEnd(9),
        r.peakRssMiB.toFixed(0).padEnd(13),
        `${(r.peakRssMiB / first.peakRssMiB).toFixed(2)}×`,
    ];
    process.stdout.write(`${row.join(' ')}\n`);
}
const cats = results.at(-1).categories;
process.stdout.write(`categories (last run): ${Object.entries(cats).map(([k, v]) => `${k} ${v.blocks}`).join(', ')}\n`);
//# sourceMappingURL=datamanager-bench.js.map