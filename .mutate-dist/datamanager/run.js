import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { requireDatamanager } from '../shared/config.js';
import { EXIT } from '../shared/cli.js';
import { balancePass } from './balance-pass.js';
import { createTotals } from './balance-report.js';
import { scanCollections } from './collections.js';
import { clearTrashLists, commitChanges } from './commit.js';
import { writeDryRun } from './dry-run.js';
import { fetchMounts } from './indexes.js';
import { noProgress } from './progress.js';
import { createReferenceSpill } from './references.js';
import { buildReport, summaryLine, writeReport } from './report.js';
import { checkMounts, checkSanity } from './sanity.js';
import { createSpill } from './spill.js';
import { readRunState, topologyChanged, topologyKey, writeRunState } from './state.js';
import { createTopology } from './topology.js';
/**
 * One datamanager run, phase by phase: lock → collect (mounts, collections,
 * indexes) → balance (block by block, merged in hash order) → sanity →
 * commit → report. Every edge is injected (clock, logger, HTTP client, lock),
 * so tests need no child process. Throws only for faults of the datamanager
 * itself (its state directory unwritable, a bug).
 */
export async function runDatamanager(options) {
    const dm = requireDatamanager(options.config);
    await mkdir(dm.stateDir, { recursive: true });
    const handle = await options.lock.tryAcquire();
    if (handle === undefined) {
        options.logger.error({ lock: options.lock.description }, `another datamanager holds the lock ${options.lock.description}: not starting`);
        return { exitCode: EXIT.locked, report: undefined };
    }
    try {
        return await runLocked(options, dm);
    }
    finally {
        await handle.release();
    }
}
async function runLocked(options, dm) {
    const { config, client, logger } = options;
    const now = options.now ?? Date.now;
    const progress = options.progress ?? noProgress;
    const startedAt = now();
    const stateFile = path.join(dm.stateDir, 'last-run.json');
    const previous = await readRunState(stateFile, (reason) => logger.warn(`last-run state ignored: ${reason}`));
    const servers = config.keepstores.map((ks) => ({ uuid: ks.uuid, url: ks.url }));
    const spill = await createSpill(path.join(dm.stateDir, 'spill'));
    try {
        const references = createReferenceSpill(await spill.open('references'), chunkOptions(options));
        const timings = { collectionsMs: 0, balanceMs: 0, commitMs: 0 };
        let mark = performance.now();
        progress.phase('reading collections', 0x10000);
        const [serverMounts, collections] = await Promise.all([
            Promise.all(servers.map((s) => mountsOf(client, s))),
            scanCollections(dm.collections, references, {
                defaultReplication: config.cluster.defaultReplication,
                onProgress: (done, total) => progress.update(total === 0 ? 0 : Math.floor((done / total) * 0x10000), `${done} bytes`),
            }),
        ]);
        await references.finish();
        timings.collectionsMs = Math.round(performance.now() - mark);
        mark = performance.now();
        const mountRefusals = checkMounts(serverMounts);
        const answered = serverMounts.filter((s) => s.mounts !== undefined);
        let pass;
        if (!mountRefusals.some((r) => r.code === 'duplicate-mount')) {
            const topology = createTopology(answered.map((s) => ({ uuid: s.uuid, url: s.url, mounts: s.mounts })));
            pass = await balancePass({
                client,
                servers: answered,
                topology,
                policy: policyAt(now(), config),
                limits: { pullLimit: dm.pullLimit, trashLimit: dm.trashLimit },
                references,
                spill,
                lostFile: dm.lostBlocksFile,
                progress,
                logger,
            });
        }
        progress.stop();
        timings.balanceMs = Math.round(performance.now() - mark);
        const refusals = checkSanity({
            mounts: mountRefusals,
            indexes: pass?.indexes ?? [],
            collections,
            referencedBlocks: pass?.referencedBlocks ?? 0,
            previous,
            force: options.force ?? false,
        });
        return await finish(options, dm, { startedAt, previous, serverMounts, collections, pass, refusals, stateFile, timings });
    }
    finally {
        progress.stop();
        await spill.destroy();
    }
}
/** Sanity has spoken: commit (or refuse, or pretend), then report and remember. */
async function finish(options, dm, c) {
    const { logger } = options;
    const now = options.now ?? Date.now;
    const dryRun = options.dryRun ?? false;
    const refused = c.refusals.length > 0;
    const answered = c.serverMounts.filter((s) => s.mounts !== undefined);
    const currentTopology = topologyKey(answered.map((s) => ({ uuid: s.uuid, mounts: s.mounts })));
    const changed = topologyChanged(c.previous.topology, currentTopology);
    const changeSets = c.pass?.changeSets.list() ?? [];
    if (refused)
        logger.warn({ refusals: c.refusals.map((r) => r.code) }, `refusing to pull or trash: ${c.refusals.map((r) => r.message).join('; ')}`);
    let commits = [];
    let outcome;
    const commitStarted = performance.now();
    const commitOptions = { client: options.client, logger, ...options.commit };
    if (dryRun) {
        await writeDryRun(path.join(dm.stateDir, 'dry-run'), changeSets, c.refusals, options.out ?? process.stdout);
        outcome = 'dry-run';
    }
    else if (refused) {
        commits = await clearTrashLists(answered, commitOptions);
        outcome = 'refused';
    }
    else {
        commits = await commitChanges(changeSets, { ...commitOptions, clearFirst: changed });
        outcome = commits.every((r) => r.pull === 'sent' && r.trash === 'sent') ? 'committed' : 'commit-failed';
    }
    c.timings.commitMs = Math.round(performance.now() - commitStarted);
    let lostFile;
    if (c.pass !== undefined && !refused) {
        await c.pass.lost.commit();
        lostFile = dm.lostBlocksFile;
    }
    else {
        await c.pass?.lost.abort();
    }
    const exitCode = refused || outcome === 'commit-failed' ? EXIT.refused : EXIT.ok;
    const report = buildReport({
        startedAt: c.startedAt,
        finishedAt: now(),
        dryRun,
        forced: options.force ?? false,
        outcome,
        exitCode,
        refusals: c.refusals,
        topologyChanged: changed,
        collections: c.collections,
        referencedBlocks: c.pass?.referencedBlocks ?? 0,
        blocks: c.pass?.blocks ?? 0,
        indexLines: c.pass?.lines ?? 0,
        totals: c.pass?.totals ?? createTotals(),
        servers: c.serverMounts,
        indexes: c.pass?.indexes ?? [],
        changeSets,
        commits,
        lostFile,
        timings: c.timings,
    });
    await writeReport(dm.reportFile, report);
    if (!dryRun)
        await writeRunState(c.stateFile, nextState(c, report, commits, currentTopology, options.config.keepstores.length));
    logger.info({ outcome, exitCode, report: dm.reportFile }, summaryLine(report));
    return { exitCode, report };
}
/** Counts move on only after a run that was not refused; the layout only once every configured server took its trash list. */
function nextState(c, report, commits, topology, configured) {
    const lastSuccess = report.refusals.length === 0
        ? { at: report.finishedAt, collections: report.collections.read, referencedBlocks: report.referencedBlocks }
        : c.previous.lastSuccess;
    const everyServer = commits.length === configured && commits.every((r) => r.trash === 'sent');
    return { lastSuccess, topology: everyServer ? topology : c.previous.topology };
}
async function mountsOf(client, server) {
    try {
        return { ...server, mounts: await fetchMounts(client, server), error: undefined };
    }
    catch (err) {
        return { ...server, mounts: undefined, error: err.message };
    }
}
function policyAt(nowMs, config) {
    const nowNs = BigInt(Math.floor(nowMs)) * 1000000n;
    return { trashCutoff: nowNs - BigInt(config.cluster.blobSigningTTLSeconds) * 1000000000n };
}
function chunkOptions(options) {
    return options.referenceChunkSize === undefined ? {} : { chunkSize: options.referenceChunkSize };
}
//# sourceMappingURL=run.js.map