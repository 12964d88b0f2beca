import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { EMPTY_STATE, readRunState, topologyChanged, topologyKey, writeRunState } from '../../datamanager/state.js';
t.test('state: missing is empty, written state reads back', async (t) => {
    const file = path.join(t.testdir({}), 'last-run.json');
    const problems = [];
    t.same(await readRunState(file, (p) => problems.push(p)), EMPTY_STATE);
    const state = { lastSuccess: { at: '2024-01-01T00:00:00.000Z', collections: 3, referencedBlocks: 9 }, topology: { s1: ['m1', 'm2'] } };
    await writeRunState(file, state);
    t.same(await readRunState(file, (p) => problems.push(p)), state);
    t.same(problems, [], 'nothing reported');
});
t.test('state: an invalid file is reported and treated as empty', async (t) => {
    const dir = t.testdir({ 'a.json': '{not json', 'b.json': JSON.stringify({ lastSuccess: { collections: -1 } }) });
    for (const name of ['a.json', 'b.json']) {
        const problems = [];
        t.same(await readRunState(path.join(dir, name), (p) => problems.push(p)), EMPTY_STATE, name);
        t.equal(problems.length, 1, `${name} reported`);
    }
});
t.test('state: the topology key sorts servers and mounts; a change is any difference', async (t) => {
    const key = topologyKey([{ uuid: 'b', mounts: [{ uuid: 'm3' }] }, { uuid: 'a', mounts: [{ uuid: 'm2' }, { uuid: 'm1' }] }]);
    t.same(key, { a: ['m1', 'm2'], b: ['m3'] });
    t.same(Object.keys(key), ['a', 'b']);
    const rows = [
        ['no previous run', undefined, true],
        ['same, listed in another order', { b: ['m3'], a: ['m2', 'm1'] }, false],
        ['a mount moved', { a: ['m1'], b: ['m2', 'm3'] }, true],
        ['a server added', { a: ['m1', 'm2'] }, true],
        ['a mount removed', { a: ['m1', 'm2'], b: [] }, true],
    ];
    for (const [name, previous, changed] of rows)
        t.equal(topologyChanged(previous, key), changed, name);
});
t.test('state: writing is atomic (no temporary file left behind)', async (t) => {
    const dir = t.testdir({ 'last-run.json': 'old' });
    await writeRunState(path.join(dir, 'last-run.json'), EMPTY_STATE);
    t.same(JSON.parse(await readFile(path.join(dir, 'last-run.json'), 'utf8')), {});
    t.same(await readdir(dir), ['last-run.json']);
});
//# sourceMappingURL=state.test.js.map