import t from 'tap';
import { createTopology } from '../../datamanager/topology.js';
const mount = (uuid, options = {}) => ({
    uuid,
    priority: 0,
    replication: 1,
    allowWrite: true,
    allowTrash: true,
    storageClasses: ['default'],
    deviceId: `host:${uuid}`,
    ...options,
});
const server = (uuid, mounts) => ({ uuid, url: `http://${uuid}.example:25107`, mounts });
t.test('topology: a server or mount uuid listed twice is a bug', async (t) => {
    t.throws(() => createTopology([server('s1', [mount('m1')]), server('s2', [mount('m1')])]), { code: 'KEEP_INTERNAL' });
    t.throws(() => createTopology([server('s1', [mount('m1')]), server('s1', [mount('m2')])]), { code: 'KEEP_INTERNAL' });
    t.throws(() => createTopology([server('s1', [mount('m1'), mount('m1')])]), { code: 'KEEP_INTERNAL' });
});
t.test('topology: servers and mounts come in uuid order, ranked across the cluster', async (t) => {
    const topology = createTopology([server('s2', [mount('m3'), mount('m2')]), server('s1', [mount('m1')])]);
    t.same(topology.servers.map((s) => s.uuid), ['s1', 's2']);
    t.same(topology.servers.flatMap((s) => s.mounts.map((m) => [m.uuid, m.rank])), [['m1', 0], ['m2', 1], ['m3', 2]]);
    t.equal(topology.mounts.get('m3')?.server, topology.servers[1]);
});
t.test('topology: each class maps to the writable mounts that carry it', async (t) => {
    const topology = createTopology([
        server('s1', [
            mount('m1', { storageClasses: ['archive', 'default'], allowWrite: false, allowTrash: false }),
            mount('m2'),
            mount('m3', { storageClasses: ['default', 'hot'] }),
        ]),
    ]);
    const classes = topology.servers[0].classes;
    t.same([...classes.keys()].sort(), ['archive', 'default', 'hot']);
    t.same(classes.get('archive'), [], 'a class only a read-only mount has: present, no pull target');
    t.same(classes.get('default')?.map((m) => m.uuid), ['m2', 'm3']);
    t.same(classes.get('hot')?.map((m) => m.uuid), ['m3']);
    t.ok(topology.mounts.get('m1')?.classes.has('archive'));
});
t.test('topology: the input is not modified', async (t) => {
    const input = [server('s2', [mount('m2'), mount('m1')]), server('s1', [])];
    const before = JSON.stringify(input);
    createTopology(input);
    t.equal(JSON.stringify(input), before);
});
//# sourceMappingURL=topology.test.js.map