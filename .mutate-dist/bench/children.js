import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { KeepError } from '../shared/errors.js';
/** Compiled repo layout: this file runs from dist/bench/. */
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdefghijklmnopqrstuv';
export const MANAGEMENT_TOKEN = 'bench-management-token-0123456789abcdefghij';
export const SIGNING_KEY = 'bench-signing-key-0123456789abcdefghijklmnopqrstuv';
import { freePorts } from '../shared/free-ports.js';
export { freePorts };
/** Writes a cluster config (JSON, which is YAML) with one directory volume per keepstore; returns its path. */
export function writeClusterConfig(dir, keepstores, extra = {}) {
    const doc = {
        cluster: {
            id: 'bench',
            systemRootToken: ADMIN_TOKEN,
            managementToken: MANAGEMENT_TOKEN,
            blobSigning: true,
            blobSigningKey: SIGNING_KEY,
        },
        keepstores: keepstores.map((k, i) => ({
            uuid: k.uuid,
            url: `http://127.0.0.1:${k.port}`,
            stateDir: k.stateDir,
            ...extra,
            volumes: [{ uuid: `bench-nyw5e-${String(i).padStart(15, '0')}`, driver: 'directory', root: k.root }],
        })),
    };
    for (const k of keepstores)
        mkdirSync(k.root, { recursive: true });
    const file = path.join(dir, 'cluster.yml');
    writeFileSync(file, JSON.stringify(doc, null, 2));
    return file;
}
export function keepstoreUuid(i) {
    return `bench-bi6l4-${String(i).padStart(15, '0')}`;
}
const live = new Set();
let guarded = false;
/** SIGKILLs every child still running (for exit paths that cannot await a clean stop). */
export function killAll() {
    for (const c of live)
        c.kill('SIGKILL');
}
/** Children must not outlive the bench, however it ends (an error, Ctrl-C, a closed pipe). */
function adopt(child) {
    if (!guarded) {
        guarded = true;
        process.on('exit', killAll);
        process.once('SIGINT', () => process.exit(130));
        process.once('SIGTERM', () => process.exit(143));
    }
    live.add(child);
    child.once('exit', () => live.delete(child));
    return child;
}
function stopper(child) {
    return () => new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null)
            return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', () => {
            clearTimeout(kill);
            resolve();
        });
        child.kill('SIGTERM');
    });
}
/** Starts `node dist/bin/keepstore.js` and waits until /_health/ping answers 200. */
export async function startKeepstoreChild(options) {
    const log = openSync(options.logFile, 'a');
    const args = [
        ...(options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : []),
        path.join(DIST, 'bin/keepstore.js'),
        '--config', options.config,
        '--uuid', options.uuid,
        '--log-level', options.logLevel ?? 'info',
    ];
    const child = adopt(spawn(process.execPath, args, { stdio: ['ignore', log, log] }));
    const server = { name: `keepstore ${options.uuid}`, url: options.url, pid: child.pid, stop: stopper(child) };
    for (let i = 0; i < 200; i++) {
        if (child.exitCode !== null) {
            const tail = readFileSync(options.logFile, 'utf8').split('\n').slice(-5).join('\n');
            throw new KeepError('KEEP_INTERNAL', `keepstore exited with code ${child.exitCode}:\n${tail}`);
        }
        try {
            const res = await request(`${options.url}/_health/ping`, { headers: { authorization: `Bearer ${MANAGEMENT_TOKEN}` } });
            await res.body.dump();
            if (res.statusCode === 200)
                return server;
        }
        catch {
            // not listening yet
        }
        await new Promise((r) => setTimeout(r, 50));
    }
    await server.stop();
    throw new KeepError('KEEP_INTERNAL', `keepstore ${options.uuid} did not answer /_health/ping within 10 s (log: ${options.logFile})`);
}
/** Starts the bare-Node baseline server on `root` and waits for its port. */
export async function startBaselineChild(root, options = {}) {
    mkdirSync(root, { recursive: true });
    const args = [path.join(DIST, 'bench/baseline-server.js'), root, ...(options.hashOnGet === false ? ['--no-get-md5'] : [])];
    const child = adopt(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] }));
    const port = await new Promise((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk) => {
            out += chunk.toString();
            const line = out.split('\n')[0];
            if (out.includes('\n') && line)
                resolve(JSON.parse(line).port);
        });
        child.once('exit', (code) => reject(new KeepError('KEEP_INTERNAL', `baseline server exited with code ${code}`)));
    });
    return { name: 'baseline', url: `http://127.0.0.1:${port}`, pid: child.pid, stop: stopper(child) };
}
/** VmRSS and VmHWM (peak) of a process in bytes, from /proc/<pid>/status. */
export function memoryOf(pid) {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}
/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (100 ticks/s). */
export function cpuSecondsOf(pid) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
}
//# sourceMappingURL=children.js.map