/** A drop beyond this fraction since the last successful run looks like a truncated export. */
export const MAX_DROP = 0.1;
/**
 * Refusals that are known once the mounts are in: a keepstore that did not
 * answer, a mount uuid on two servers (or twice on one), two mounts on one
 * device. Balance cannot even be built over duplicate mount uuids.
 */
export function checkMounts(servers) {
    const refusals = [];
    for (const s of servers) {
        if (s.mounts === undefined) {
            refusals.push({ code: 'keepstore-unavailable', message: `keepstore ${s.uuid} (${s.url}) did not answer: ${s.error ?? 'no answer'}` });
        }
    }
    const mountOwner = new Map();
    const deviceOwner = new Map();
    for (const s of servers) {
        for (const m of s.mounts ?? []) {
            const where = `${s.uuid}/${m.uuid}`;
            const other = mountOwner.get(m.uuid);
            if (other !== undefined) {
                refusals.push({ code: 'duplicate-mount', message: `mount ${m.uuid} reported by ${other} and ${s.uuid}` });
            }
            mountOwner.set(m.uuid, s.uuid);
            if (m.deviceId === '')
                continue;
            const sameDevice = deviceOwner.get(m.deviceId);
            if (sameDevice !== undefined) {
                refusals.push({ code: 'duplicate-device', message: `device_id ${m.deviceId} reported by ${sameDevice} and ${where}` });
            }
            deviceOwner.set(m.deviceId, where);
        }
    }
    return refusals;
}
/** Every reason to refuse this run, in a fixed order; empty when it may commit. */
export function checkSanity(input) {
    const refusals = [...input.mounts];
    for (const index of input.indexes) {
        if (index.state !== 'complete') {
            refusals.push({
                code: 'index-incomplete',
                message: `index of ${index.server}/${index.mount} ${index.state}${index.error === undefined ? '' : `: ${index.error}`}`,
            });
        }
    }
    const c = input.collections;
    if (c.unreadable !== undefined) {
        refusals.push({ code: 'collections-unreadable', message: `cannot read collections: ${c.unreadable}` });
    }
    else if (c.collections === 0) {
        refusals.push({ code: 'no-collections', message: 'no collection was read' });
    }
    if (c.malformed > 0) {
        const first = c.malformedRecords[0];
        const where = first === undefined ? '' : `; first: ${first.file}:${first.line}: ${first.reason}`;
        refusals.push({ code: 'malformed-collection', message: `${c.malformed} malformed collection record(s)${where}` });
    }
    const last = input.previous.lastSuccess;
    if (last !== undefined && !input.force) {
        if (dropped(last.collections, c.collections)) {
            refusals.push({
                code: 'collections-dropped',
                message: `collections fell from ${last.collections} to ${c.collections} since the last successful run (a truncated export?); --force to accept`,
            });
        }
        if (dropped(last.referencedBlocks, input.referencedBlocks)) {
            refusals.push({
                code: 'references-dropped',
                message: `referenced blocks fell from ${last.referencedBlocks} to ${input.referencedBlocks} since the last successful run; --force to accept`,
            });
        }
    }
    return refusals;
}
function dropped(before, now) {
    return before > 1 && now < before * (1 - MAX_DROP);
}
//# sourceMappingURL=sanity.js.map