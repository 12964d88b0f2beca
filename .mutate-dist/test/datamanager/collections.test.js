import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { scanCollections } from '../../datamanager/collections.js';
const A = 'acbd18db4cc2f85cedef654fccc4a4d8';
const B = '37b51d194a7513e45b56f6524f2d51f2';
const manifest = (...hashes) => `. ${hashes.map((h) => `${h}+3`).join(' ')} 0:3:f\n`;
function sink() {
    const collections = [];
    return { collections, addCollection: (c) => void collections.push(c) };
}
t.test('collections: a .jsonl file gives each record with its replication and classes resolved', async (t) => {
    const dir = t.testdir({
        'c.jsonl': [
            JSON.stringify({ uuid: 'c1', manifest_text: manifest(A), replication_desired: null, storage_classes_desired: null }),
            '',
            JSON.stringify({ uuid: 'c2', manifest_text: manifest(A, B), replication_desired: 3, storage_classes_desired: ['hot', 'default', 'hot'], name: 'extra keys are fine' }),
            JSON.stringify({ uuid: 'c3', manifest_text: '' }),
        ].join('\n'),
    });
    const s = sink();
    const summary = await scanCollections(path.join(dir, 'c.jsonl'), s, { defaultReplication: 2 });
    t.same(s.collections.map((c) => [c.uuid, c.replication, c.classes, c.refs.hashes]), [
        ['c1', 2, ['default'], [A]],
        ['c2', 3, ['default', 'hot'], [A, B]],
        ['c3', 2, ['default'], []],
    ]);
    t.match(summary, { files: 1, collections: 3, references: 3, malformed: 0, unreadable: undefined });
});
t.test('collections: malformed records are counted with file and line and skipped', async (t) => {
    const dir = t.testdir({
        'c.jsonl': [
            JSON.stringify({ uuid: 'ok', manifest_text: manifest(A) }),
            '{not json',
            JSON.stringify({ uuid: 'bad-manifest', manifest_text: `. ${A}+3\n` }),
            JSON.stringify({ uuid: 'a uuid with spaces', manifest_text: '' }),
            JSON.stringify({ uuid: 'r', manifest_text: '', replication_desired: 'two' }),
            JSON.stringify([1, 2]),
        ].join('\n'),
    });
    const s = sink();
    const file = path.join(dir, 'c.jsonl');
    const summary = await scanCollections(file, s, { defaultReplication: 2 });
    t.equal(summary.collections, 1);
    t.equal(summary.malformed, 5);
    t.same(summary.malformedRecords.map((m) => [m.file, m.line]), [[file, 2], [file, 3], [file, 4], [file, 5], [file, 6]]);
    t.match(summary.malformedRecords[0].reason, /^invalid JSON/);
    t.match(summary.malformedRecords[1].reason, /manifest line 1: no file segment/);
    t.match(summary.malformedRecords[3].reason, /^replication_desired: /);
    t.same(s.collections.map((c) => c.uuid), ['ok']);
});
t.test('collections: a directory is read in name order, .json files hold one record or an array, other files are skipped', async (t) => {
    const dir = t.testdir({
        'b.json': JSON.stringify([{ uuid: 'b1', manifest_text: manifest(A) }, { uuid: 'b2', manifest_text: '' }]),
        'a.jsonl': `${JSON.stringify({ uuid: 'a1', manifest_text: manifest(B) })}\n`,
        'c.json': JSON.stringify({ uuid: 'c1', manifest_text: '' }),
        'd.json': '{\n  "uuid": "d1",\n  oops\n}',
        '.hidden.jsonl': `${JSON.stringify({ uuid: 'hidden', manifest_text: '' })}\n`,
        'notes.txt': 'not a collection',
        sub: { 'e.jsonl': `${JSON.stringify({ uuid: 'nested', manifest_text: '' })}\n` },
    });
    const s = sink();
    const summary = await scanCollections(dir, s, { defaultReplication: 1 });
    t.same(s.collections.map((c) => c.uuid), ['a1', 'b1', 'b2', 'c1']);
    t.equal(summary.files, 4);
    t.equal(summary.malformed, 1);
    t.same([summary.malformedRecords[0].file, summary.malformedRecords[0].line], [path.join(dir, 'd.json'), 3], 'the line where JSON parsing failed');
});
t.test('collections: a missing source is reported as unreadable, not thrown', async (t) => {
    const dir = t.testdir({});
    const summary = await scanCollections(path.join(dir, 'missing.jsonl'), sink(), { defaultReplication: 2 });
    t.match(summary.unreadable, /ENOENT/);
    t.equal(summary.collections, 0);
});
t.test('collections: progress is reported in bytes up to the total', async (t) => {
    const dir = t.testdir({});
    await mkdir(path.join(dir, 'c'));
    const line = `${JSON.stringify({ uuid: 'x', manifest_text: manifest(A) })}\n`;
    await writeFile(path.join(dir, 'c', 'big.jsonl'), line.repeat(30_000));
    const seen = [];
    await scanCollections(path.join(dir, 'c'), sink(), { defaultReplication: 2, onProgress: (done, total) => seen.push([done, total]) });
    t.ok(seen.length > 1, 'several progress calls');
    t.same(seen.at(-1), [line.length * 30_000, line.length * 30_000]);
});
t.test('collections: a sink that returns a promise is awaited before the next record', async (t) => {
    const dir = t.testdir({ 'c.jsonl': ['a', 'b', 'c'].map((u) => JSON.stringify({ uuid: u, manifest_text: '' })).join('\n') });
    const order = [];
    await scanCollections(path.join(dir, 'c.jsonl'), {
        async addCollection(c) {
            order.push(`start ${c.uuid}`);
            await new Promise((resolve) => setImmediate(resolve));
            order.push(`end ${c.uuid}`);
        },
    }, { defaultReplication: 2 });
    t.same(order, ['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
});
//# sourceMappingURL=collections.test.js.map