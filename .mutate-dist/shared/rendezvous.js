import { md5hex } from './hash.js';
const ARVADOS_UUID_LENGTH = 27;
const SUFFIX_LENGTH = 15;
/** The part of a uuid rendezvous hashes: the last 15 characters of a 27-character uuid, else all of it. */
export function rendezvousSuffix(uuid) {
    return uuid.length === ARVADOS_UUID_LENGTH ? uuid.slice(ARVADOS_UUID_LENGTH - SUFFIX_LENGTH) : uuid;
}
/** Hex digests compare as strings in the same order as their bytes. */
function compareHex(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
}
/**
 * Sorts `items` by a comparator over their indexes, given each item's weight
 * `md5hex(hash + suffix(uuid))` computed once. Sorting indexes, not wrapper
 * objects, keeps the per-block cost to one digest string per item.
 */
function rank(hash, items, uuidOf, compare) {
    const n = items.length;
    if (n < 2)
        return items.slice();
    const weights = new Array(n);
    const order = new Array(n);
    for (let i = 0; i < n; i++) {
        weights[i] = md5hex(hash + rendezvousSuffix(uuidOf(items[i])));
        order[i] = i;
    }
    order.sort((x, y) => compare(weights, x, y));
    const out = new Array(n);
    for (let i = 0; i < n; i++)
        out[i] = items[order[i]];
    return out;
}
/**
 * Servers for a block, best first (PROTOCOL §6): `md5hex(hash + suffix(uuid))`
 * descending. Clients write to the first N; the datamanager wants replicas there.
 * Returns a new array.
 */
export function serviceOrder(hash, services, uuidOf) {
    return rank(hash, services, uuidOf, (w, x, y) => compareHex(w[y], w[x]));
}
const mountUuid = (m) => m.uuid;
/**
 * Mounts inside one server, first to try first (PROTOCOL §6): `priority`
 * descending, then `md5hex(hash + suffix(uuid))` ascending. Returns a new array.
 */
export function mountOrder(hash, mounts) {
    return rank(hash, mounts, mountUuid, (w, x, y) => mounts[y].priority - mounts[x].priority || compareHex(w[x], w[y]));
}
//# sourceMappingURL=rendezvous.js.map