import t from 'tap';
import fc from 'fast-check';
import { formatIndexLine, isValidIndexPrefix, parseIndexLine } from '../../shared/index-format.js';
const H = 'acbd18db4cc2f85cedef654fccc4a4d8';
t.test('formatIndexLine writes hash+size, a space, the mtime in ns and a newline', async (t) => {
    const rows = [
        [{ hash: H, size: 3, mtime: 1707249451308502672n }, `${H}+3 1707249451308502672\n`],
        [{ hash: 'd41d8cd98f00b204e9800998ecf8427e', size: 0, mtime: 0n }, 'd41d8cd98f00b204e9800998ecf8427e+0 0\n'],
        [{ hash: H, size: 67108864, mtime: 9007199254740993n }, `${H}+67108864 9007199254740993\n`],
    ];
    for (const [entry, line] of rows)
        t.equal(formatIndexLine(entry), line, JSON.stringify(line));
});
t.test('parseIndexLine keeps nanosecond mtimes exact', async (t) => {
    const rows = [
        [`${H}+3 1707249451308502672`, { hash: H, size: 3, mtime: 1707249451308502672n }],
        [`${H}+3 9007199254740993`, { hash: H, size: 3, mtime: 9007199254740993n }],
        [`${H}+0 0`, { hash: H, size: 0, mtime: 0n }],
    ];
    for (const [line, entry] of rows)
        t.same(parseIndexLine(line), entry, line);
});
t.test('parseIndexLine refuses malformed lines with KEEP_BAD_REQUEST', async (t) => {
    const rows = [
        ['empty line', ''],
        ['hash only', H],
        ['no mtime', `${H}+3`],
        ['no size', `${H} 1707249451308502672`],
        ['uppercase hash', `${H.toUpperCase()}+3 1`],
        ['31-digit hash', `${H.slice(1)}+3 1`],
        ['empty size', `${H}+ 1`],
        ['size with a hint', `${H}+3+K@zzzzz 1`],
        ['negative size', `${H}+-3 1`],
        ['size beyond 2^53', `${H}+9007199254740992 1`],
        ['empty mtime', `${H}+3 `],
        ['negative mtime', `${H}+3 -1`],
        ['fractional mtime', `${H}+3 1.5`],
        ['mtime in exponent form', `${H}+3 1e18`],
        ['two spaces', `${H}+3  1`],
        ['a trailing field', `${H}+3 1 2`],
        ['a carriage return', `${H}+3 1\r`],
        ['a trailing newline', `${H}+3 1\n`],
    ];
    for (const [name, line] of rows)
        t.throws(() => parseIndexLine(line), { code: 'KEEP_BAD_REQUEST' }, name);
});
t.test('an index line round-trips for any entry', async (t) => {
    const entry = fc.record({
        hash: fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 32, maxLength: 32 }),
        size: fc.nat(67108864),
        mtime: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
    });
    t.doesNotThrow(() => fc.assert(fc.property(entry, (e) => {
        const back = parseIndexLine(formatIndexLine(e).slice(0, -1));
        if (back.hash !== e.hash || back.size !== e.size || back.mtime !== e.mtime)
            throw new Error('changed');
    }), { numRuns: 300 }));
});
t.test('isValidIndexPrefix accepts 0 to 32 lowercase hex digits', async (t) => {
    const rows = [
        ['', true],
        ['a', true],
        ['acb', true],
        [H, true],
        [`${H}0`, false],
        ['A', false],
        ['g', false],
        ['ac/', false],
        ['ac+3', false],
        [' a', false],
    ];
    for (const [prefix, ok] of rows)
        t.equal(isValidIndexPrefix(prefix), ok, `${JSON.stringify(prefix)} → ${ok}`);
});
//# sourceMappingURL=index-format.test.js.map