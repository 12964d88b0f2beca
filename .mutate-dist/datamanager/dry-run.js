import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pullItemCodec, trashItemCodec } from '../shared/worklist-items.js';
import { createAtomicWriter } from './atomic-file.js';
import { listBody } from './commit.js';
/**
 * `--dry-run`: writes each server's would-be lists to
 * `<dir>/<server uuid>.pull.json` and `.trash.json` (exactly the bodies
 * commit would PUT; a refused run would send only `[]` as trash lists) and
 * prints one line per server to `out`.
 */
export async function writeDryRun(dir, sets, refusals, out) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const refused = refusals.length > 0;
    if (refused)
        out.write(`dry run: would refuse (${refusals.map((r) => r.code).join(', ')}): only empty trash lists would be sent\n`);
    for (const set of sets) {
        const base = path.join(dir, set.server.uuid);
        const pulls = refused ? [] : set.pulls;
        const trashes = refused ? [] : set.trashes;
        await writeList(`${base}.pull.json`, listBody(pulls, pullItemCodec));
        await writeList(`${base}.trash.json`, listBody(trashes, trashItemCodec));
        out.write(`dry run: ${set.server.uuid} ${set.server.url}: ${refused ? 'no pull list' : `${pulls.length} pulls`} ` +
            `(${set.deferredPulls} deferred), ${trashes.length} trashes (${set.deferredTrashes} deferred) → ${base}.{pull,trash}.json\n`);
    }
}
async function writeList(file, pieces) {
    const writer = await createAtomicWriter(file);
    try {
        for (const piece of pieces)
            await writer.write(piece);
        await writer.write('\n');
        await writer.commit();
    }
    catch (err) {
        await writer.abort();
        throw err;
    }
}
//# sourceMappingURL=dry-run.js.map