import { balanceBlock } from './balance.js';
import { addDecision, createTotals } from './balance-report.js';
import { ChangeSets } from './change-sets.js';
import { createAtomicWriter } from './atomic-file.js';
import { openIndex, spillIndex } from './indexes.js';
import { mergeBlocks } from './merge.js';
const PROGRESS_EVERY = 1 << 16;
/**
 * Streams every mount's index and the references through `balanceBlock`,
 * block by block in hash order, collecting change sets, totals and the
 * lost-blocks file. An index found unsorted stops the pass; the pass then
 * starts over with that index spilled to `level` first (indexes are
 * fetched again: a second read beats holding one in memory).
 */
export async function balancePass(input) {
    const spilled = new Set();
    for (let attempt = 0;; attempt++) {
        const result = await onePass(input, spilled, attempt);
        const unsorted = result.indexes.filter((i) => i.state === 'unsorted');
        if (unsorted.length === 0)
            return result;
        await result.lost.abort();
        for (const i of unsorted) {
            spilled.add(`${i.server}/${i.mount}`);
            input.logger.warn({ server: i.server, mount: i.mount }, 'index not sorted: spilling it to disk and starting over');
        }
    }
}
async function onePass(input, spilled, attempt) {
    const { topology, policy, progress } = input;
    const ac = new AbortController();
    const sources = [];
    let n = 0;
    for (const server of input.servers) {
        for (const mount of server.mounts ?? []) {
            if (spilled.has(`${server.uuid}/${mount.uuid}`)) {
                const db = await input.spill.open(`index-${attempt}-${n++}`);
                sources.push(await spillIndex(input.client, server, mount.uuid, db));
            }
            else {
                sources.push(openIndex(input.client, server, mount.uuid, { signal: ac.signal, onUnsorted: () => ac.abort() }));
            }
        }
    }
    const totals = createTotals();
    const changeSets = new ChangeSets(topology.servers, input.limits);
    const lost = await createAtomicWriter(input.lostFile);
    let referencedBlocks = 0;
    let seen = 0;
    progress.phase('balancing', 0x10000);
    const visit = (block, reference) => {
        const decision = balanceBlock(block, topology, policy);
        addDecision(totals, block, decision);
        changeSets.add(decision, block.size);
        if (reference !== undefined)
            referencedBlocks++;
        if ((++seen & (PROGRESS_EVERY - 1)) === 0) {
            progress.update(parseInt(block.hash.slice(0, 4), 16), `${seen} blocks`);
        }
        if (decision.category === 'lost')
            return lost.write(`${block.hash}+${block.size} ${reference?.collections ?? ''}\n`);
        return undefined;
    };
    try {
        const merged = await mergeBlocks(sources, input.references.blocks(), visit, { signal: ac.signal });
        return {
            totals,
            changeSets,
            indexes: sources.map((s) => s.status),
            referencedBlocks,
            blocks: merged.blocks,
            lines: merged.lines,
            lost,
        };
    }
    catch (err) {
        await lost.abort();
        throw err;
    }
}
//# sourceMappingURL=balance-pass.js.map