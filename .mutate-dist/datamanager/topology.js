import { KeepError } from '../shared/errors.js';
/**
 * Precomputes the lookups of a run. Throws `KEEP_INTERNAL` on a duplicate
 * server or mount uuid: the sanity phase refuses those before balance runs.
 */
export function createTopology(servers) {
    const mounts = new Map();
    const seen = new Set();
    const sorted = [...servers].sort((a, b) => compareStrings(a.uuid, b.uuid));
    const out = [];
    let rank = 0;
    for (const info of sorted) {
        if (seen.has(info.uuid))
            throw new KeepError('KEEP_INTERNAL', `balance: server ${info.uuid} listed twice`);
        seen.add(info.uuid);
        const serverMounts = [];
        const classes = new Map();
        const server = { uuid: info.uuid, url: info.url, mounts: serverMounts, classes };
        for (const m of [...info.mounts].sort((a, b) => compareStrings(a.uuid, b.uuid))) {
            if (mounts.has(m.uuid))
                throw new KeepError('KEEP_INTERNAL', `balance: mount ${m.uuid} listed twice`);
            const mount = {
                uuid: m.uuid,
                priority: m.priority,
                replication: m.replication,
                allowWrite: m.allowWrite,
                allowTrash: m.allowTrash,
                deviceId: m.deviceId,
                classes: new Set(m.storageClasses),
                server,
                rank: rank++,
            };
            mounts.set(m.uuid, mount);
            serverMounts.push(mount);
            for (const cls of mount.classes) {
                let writable = classes.get(cls);
                if (writable === undefined)
                    classes.set(cls, (writable = []));
                if (mount.allowWrite)
                    writable.push(mount);
            }
        }
        out.push(server);
    }
    return { servers: out, mounts };
}
function compareStrings(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
}
//# sourceMappingURL=topology.js.map