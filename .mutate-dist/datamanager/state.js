import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { writeFileAtomic } from './atomic-file.js';
const stateSchema = z.object({
    lastSuccess: z
        .object({ at: z.string(), collections: z.number().int().min(0), referencedBlocks: z.number().int().min(0) })
        .optional(),
    topology: z.record(z.string(), z.array(z.string())).optional(),
});
export const EMPTY_STATE = { lastSuccess: undefined, topology: undefined };
/**
 * Reads the state; a missing file is the empty state. An unreadable or
 * invalid file is reported through `onInvalid` and treated as empty: the
 * run then clears every trash list first, and skips only the drop check.
 */
export async function readRunState(file, onInvalid) {
    let text;
    try {
        text = await readFile(file, 'utf8');
    }
    catch (err) {
        if (err.code !== 'ENOENT')
            onInvalid(`${file}: ${err.message}`);
        return EMPTY_STATE;
    }
    try {
        const parsed = stateSchema.parse(JSON.parse(text));
        return { lastSuccess: parsed.lastSuccess, topology: parsed.topology };
    }
    catch (err) {
        onInvalid(`${file}: ${err.message.split('\n')[0]}`);
        return EMPTY_STATE;
    }
}
export async function writeRunState(file, state) {
    await writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
}
/** Server uuid → sorted mount uuids, the shape kept in {@link RunState.topology}. */
export function topologyKey(servers) {
    const out = {};
    for (const s of [...servers].sort((a, b) => (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0))) {
        out[s.uuid] = s.mounts.map((m) => m.uuid).sort();
    }
    return out;
}
/** True unless both describe the same servers with the same mounts (no previous one counts as a change). */
export function topologyChanged(previous, current) {
    if (previous === undefined)
        return true;
    return JSON.stringify(sortKeys(previous)) !== JSON.stringify(sortKeys(current));
}
function sortKeys(t) {
    return Object.keys(t)
        .sort()
        .map((k) => [k, [...t[k]].sort()]);
}
//# sourceMappingURL=state.js.map