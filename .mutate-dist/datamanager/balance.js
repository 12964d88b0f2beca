import { KeepError } from '../shared/errors.js';
import { mountOrder, serviceOrder } from '../shared/rendezvous.js';
/**
 * What a block is, first match wins:
 * - `lost`: referenced, held nowhere.
 * - `under-replicated`: some class has fewer copies, anywhere, than wanted
 *   (mounts of that class, each mount's `replication`, one device counted once).
 * - `misplaced`: enough copies, but some wanted position lacks the block
 *   (pulls pending, or impossible). Copies elsewhere are trashed only when
 *   the positions that do hold it already reach every class's count (this
 *   happens when a mount of higher `replication` further down makes up for
 *   a missing one).
 * - `over-replicated`: the wanted positions hold every class; some copy is
 *   elsewhere (trashed when old, on a trashable mount and not sharing an mtime
 *   with a kept copy; otherwise kept).
 * - `ok`: every copy is at a wanted position and nothing is missing.
 * - `garbage`: unreferenced, some copy older than the cutoff (those on trashable mounts are trashed).
 * - `young-unreferenced`: unreferenced, every copy younger than the cutoff (left alone).
 */
export const CATEGORIES = [
    'ok',
    'misplaced',
    'under-replicated',
    'over-replicated',
    'lost',
    'garbage',
    'young-unreferenced',
];
const DEFAULT_CLASSES = ['default'];
const uuidOf = (s) => s.uuid;
/**
 * Decides one block, keep-balance style (PROTOCOL §8), with no I/O. For each
 * class, wanted positions are found by walking servers in rendezvous order:
 * a server with the class contributes one mount — one of that class already
 * holding the block (read-only counts), else its first writable mount of the
 * class in mount order (reusing one already chosen for another class) — until
 * the mounts' `replication` adds up to the desired count. A device already
 * used by the class is not counted twice. Missing positions are pulled.
 * Other copies are trashed only once the positions already hold every class
 * (pending pulls do not count), and only when older than the cutoff, on a
 * trashable mount, with an mtime no kept copy has.
 * Throws `KEEP_INTERNAL` for a replica on a mount the topology does not have.
 */
export function balanceBlock(block, topology, policy) {
    const held = resolveReplicas(block, topology);
    if (block.want === undefined)
        return collectGarbage(block, held, policy);
    if (held.length === 0)
        return { category: 'lost', pulls: [], trashes: [] };
    const desired = Math.max(1, block.want.replication);
    const order = serviceOrder(block.hash, topology.servers, uuidOf);
    const positions = [];
    let short = false;
    let under = false;
    for (const cls of classesOf(block.want)) {
        if (placeClass(block.hash, cls, desired, order, held, positions) < desired)
            short = true;
        if (!under && copiesOf(cls, held) < desired)
            under = true;
    }
    const pulls = pullsFor(block, held, order, positions);
    const trashes = short ? [] : trashesFor(block, held, positions, policy);
    return { category: categoryOf(block, under, short || pulls.length > 0, positions), pulls, trashes };
}
function resolveReplicas(block, topology) {
    const held = new Array(block.replicas.length);
    for (let i = 0; i < block.replicas.length; i++) {
        const replica = block.replicas[i];
        const mount = topology.mounts.get(replica.mount);
        if (mount === undefined || mount.server.uuid !== replica.server) {
            throw new KeepError('KEEP_INTERNAL', `balance: ${block.hash} on unknown mount ${replica.server}/${replica.mount}`);
        }
        held[i] = mount;
    }
    return held;
}
function classesOf(want) {
    const classes = want.classes;
    if (classes.length === 0)
        return DEFAULT_CLASSES;
    for (let i = 1; i < classes.length; i++) {
        if (classes[i - 1] > classes[i])
            return [...classes].sort();
    }
    return classes;
}
/** Adds the class's wanted positions to `positions`; returns the replication they already hold. */
function placeClass(hash, cls, desired, order, held, positions) {
    const devices = [];
    let planned = 0;
    let holding = 0;
    for (const server of order) {
        if (planned >= desired)
            break;
        const writable = server.classes.get(cls);
        if (writable === undefined)
            continue;
        const position = holderOn(hash, server, cls, held, devices) ?? targetOn(hash, writable, devices, positions);
        if (position === undefined)
            continue;
        planned += position.mount.replication;
        if (position.replica >= 0)
            holding += position.mount.replication;
        if (position.mount.deviceId !== '')
            devices.push(position.mount.deviceId);
        if (!positions.some((p) => p.mount === position.mount))
            positions.push(position);
    }
    return holding;
}
function deviceUsed(devices, mount) {
    return mount.deviceId !== '' && devices.includes(mount.deviceId);
}
/** The mount of `server` with class `cls` that holds the block, first in mount order when several do. */
function holderOn(hash, server, cls, held, devices) {
    let found = -1;
    let several = false;
    for (let i = 0; i < held.length; i++) {
        const mount = held[i];
        if (mount.server !== server || !mount.classes.has(cls) || deviceUsed(devices, mount))
            continue;
        if (found >= 0 && held[found] !== mount)
            several = true;
        else if (found < 0)
            found = i;
    }
    if (found < 0)
        return undefined;
    if (!several)
        return { mount: held[found], replica: found };
    const candidates = held.filter((m) => m.server === server && m.classes.has(cls) && !deviceUsed(devices, m));
    const best = mountOrder(hash, candidates)[0];
    return { mount: best, replica: held.indexOf(best) };
}
/** Where a pull for `cls` lands on a server: a mount already chosen for another class, else the first in mount order. */
function targetOn(hash, writable, devices, positions) {
    let first;
    let count = 0;
    for (const mount of writable) {
        if (deviceUsed(devices, mount))
            continue;
        const chosen = positions.find((p) => p.mount === mount);
        if (chosen !== undefined)
            return chosen;
        first ??= mount;
        count++;
    }
    if (first === undefined)
        return undefined;
    if (count === 1)
        return { mount: first, replica: -1 };
    return { mount: mountOrder(hash, writable.filter((m) => !deviceUsed(devices, m)))[0], replica: -1 };
}
/** Replication of class `cls` held anywhere, one device (or mount) counted once. */
function copiesOf(cls, held) {
    let copies = 0;
    outer: for (let i = 0; i < held.length; i++) {
        const mount = held[i];
        if (!mount.classes.has(cls))
            continue;
        for (let j = 0; j < i; j++) {
            const other = held[j];
            if (other === mount || (mount.deviceId !== '' && other.deviceId === mount.deviceId && other.classes.has(cls))) {
                continue outer;
            }
        }
        copies += mount.replication;
    }
    return copies;
}
/**
 * One pull per position that lacks the block. Sources: the other servers
 * holding it, in rendezvous order, then the target server itself when it
 * holds the block on another mount (a move between classes on one server).
 */
function pullsFor(block, held, order, positions) {
    const pulls = [];
    let holders;
    for (const position of positions) {
        if (position.replica >= 0)
            continue;
        holders ??= order.filter((s) => held.some((m) => m.server === s));
        const target = position.mount.server;
        const servers = [];
        for (const s of holders)
            if (s !== target)
                servers.push(s.url);
        if (holders.includes(target))
            servers.push(target.url);
        pulls.push({
            server: target.uuid,
            item: { locator: `${block.hash}+${block.size}`, servers, mount_uuid: position.mount.uuid },
        });
    }
    return pulls;
}
/**
 * Copies off the wanted positions that are older than the cutoff, on a
 * trashable mount, and share no mtime with a copy that stays (equal mtimes
 * may be one file seen through two mounts). Only called once every class
 * is held at its positions.
 */
function trashesFor(block, held, positions, policy) {
    const replicas = block.replicas;
    const doomed = [];
    for (let i = 0; i < replicas.length; i++) {
        if (isTrashable(replicas[i], held[i], policy) && !positions.some((p) => p.replica === i))
            doomed.push(i);
    }
    const trashed = doomed.filter((i) => replicas.every((r, j) => doomed.includes(j) || r.mtime !== replicas[i].mtime));
    return trashList(block, held, trashed);
}
function isTrashable(replica, mount, policy) {
    return replica.mtime < policy.trashCutoff && mount.allowTrash;
}
function collectGarbage(block, held, policy) {
    let old = false;
    const doomed = [];
    for (let i = 0; i < block.replicas.length; i++) {
        const replica = block.replicas[i];
        if (replica.mtime >= policy.trashCutoff)
            continue;
        old = true;
        if (held[i].allowTrash)
            doomed.push(i);
    }
    return { category: old ? 'garbage' : 'young-unreferenced', pulls: [], trashes: trashList(block, held, doomed) };
}
function trashList(block, held, indexes) {
    if (indexes.length > 1)
        indexes.sort((a, b) => held[a].rank - held[b].rank);
    const locator = `${block.hash}+${block.size}`;
    return indexes.map((i) => ({
        server: held[i].server.uuid,
        item: { locator, block_mtime: block.replicas[i].mtime, mount_uuid: held[i].uuid },
    }));
}
function categoryOf(block, under, misplaced, positions) {
    if (under)
        return 'under-replicated';
    if (misplaced)
        return 'misplaced';
    const atPositions = positions.reduce((n, p) => (p.replica >= 0 ? n + 1 : n), 0);
    return block.replicas.length > atPositions ? 'over-replicated' : 'ok';
}
//# sourceMappingURL=balance.js.map