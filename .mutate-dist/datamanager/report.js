import { writeFileAtomic } from './atomic-file.js';
export function buildReport(input) {
    const commitOf = (uuid) => input.commits.find((c) => c.server === uuid);
    const setOf = (uuid) => input.changeSets.find((s) => s.server.uuid === uuid);
    const delivered = (uuid, which) => input.outcome === 'dry-run' ? input.refusals.length === 0 : commitOf(uuid)?.[which] === 'sent' && input.refusals.length === 0;
    const work = (which) => {
        const out = { decided: 0, decidedBytes: 0, sent: 0, sentBytes: 0, deferred: 0 };
        const totals = which === 'pull' ? input.totals.pulls : input.totals.trashes;
        out.decided = totals.items;
        out.decidedBytes = totals.bytes;
        for (const set of input.changeSets) {
            out.deferred += which === 'pull' ? set.deferredPulls : set.deferredTrashes;
            if (!delivered(set.server.uuid, which))
                continue;
            out.sent += which === 'pull' ? set.pulls.length : set.trashes.length;
            out.sentBytes += which === 'pull' ? set.pullBytes : set.trashBytes;
        }
        return out;
    };
    const lost = input.totals.categories.lost;
    const c = input.collections;
    return {
        startedAt: new Date(input.startedAt).toISOString(),
        finishedAt: new Date(input.finishedAt).toISOString(),
        durationMs: input.finishedAt - input.startedAt,
        dryRun: input.dryRun,
        forced: input.forced,
        outcome: input.outcome,
        exitCode: input.exitCode,
        refusals: input.refusals,
        topologyChanged: input.topologyChanged,
        collections: { files: c.files, read: c.collections, references: c.references, malformed: c.malformed, malformedRecords: c.malformedRecords },
        referencedBlocks: input.referencedBlocks,
        blocks: input.blocks,
        indexLines: input.indexLines,
        categories: input.totals.categories,
        pulls: work('pull'),
        trashes: work('trash'),
        dedupSavedBytes: input.totals.dedupSavedBytes,
        lost: { blocks: lost.blocks, bytes: lost.bytes, file: input.lostFile },
        timings: input.timings,
        servers: input.servers.map((s) => {
            const set = setOf(s.uuid);
            const commit = commitOf(s.uuid);
            return {
                uuid: s.uuid,
                url: s.url,
                answered: s.mounts !== undefined,
                error: s.error,
                mounts: (s.mounts ?? []).map((m) => {
                    const index = input.indexes.find((i) => i.server === s.uuid && i.mount === m.uuid);
                    return {
                        uuid: m.uuid,
                        deviceId: m.deviceId,
                        storageClasses: m.storageClasses,
                        index: index?.state ?? 'not-fetched',
                        lines: index?.lines ?? 0,
                        error: index?.error,
                    };
                }),
                pulls: { listed: set?.pulls.length ?? 0, deferred: set?.deferredPulls ?? 0, outcome: commit?.pull ?? 'not-sent' },
                trashes: { listed: set?.trashes.length ?? 0, deferred: set?.deferredTrashes ?? 0, outcome: commit?.trash ?? 'not-sent' },
            };
        }),
    };
}
export async function writeReport(file, report) {
    await writeFileAtomic(file, `${JSON.stringify(report, null, 2)}\n`);
}
const SHORT = {
    ok: 'ok',
    misplaced: 'misplaced',
    'under-replicated': 'under',
    'over-replicated': 'over',
    lost: 'lost',
    garbage: 'garbage',
    'young-unreferenced': 'young',
};
/** The one summary log line of a run. */
export function summaryLine(report) {
    const cats = Object.keys(SHORT).map((c) => `${SHORT[c]} ${report.categories[c].blocks}`).join(', ');
    const seconds = (report.durationMs / 1000).toFixed(1);
    return (`${report.outcome}: ${report.blocks} blocks (${cats}), ${report.collections.read} collections; ` +
        `pulls ${report.pulls.sent} sent ${report.pulls.deferred} deferred; ` +
        `trashes ${report.trashes.sent} sent ${report.trashes.deferred} deferred; ${seconds} s`);
}
//# sourceMappingURL=report.js.map