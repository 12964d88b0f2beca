import t from 'tap';
import { parseManifest } from '../../datamanager/manifest.js';
const A = 'acbd18db4cc2f85cedef654fccc4a4d8';
const B = '37b51d194a7513e45b56f6524f2d51f2';
const EMPTY = 'd41d8cd98f00b204e9800998ecf8427e';
t.test('manifest: every locator token is a reference, hints and all', async (t) => {
    const rows = [
        ['one stream', `. ${A}+3 0:3:foo.txt\n`, [[A, 3]]],
        ['signed locator and extra hints', `. ${A}+3+Aabc@12345678+K@zzzzz 0:3:foo\n`, [[A, 3]]],
        ['two streams, a block twice', `. ${A}+3 ${B}+3 0:6:a\n./sub ${A}+3 0:3:b 3:0:c\n`, [[A, 3], [B, 3], [A, 3]]],
        ['no trailing newline', `. ${A}+3 0:3:foo`, [[A, 3]]],
        ['the empty block is not a reference', `. ${EMPTY}+0 0:0:empty\n`, []],
        ['an empty manifest', '', []],
    ];
    for (const [name, text, refs] of rows) {
        const got = parseManifest(text);
        t.same(typeof got === 'string' ? got : got.hashes.map((h, i) => [h, got.sizes[i]]), refs, name);
    }
});
t.test('manifest: a malformed line is a one-line reason naming the line', async (t) => {
    const rows = [
        ['no locator', '. 0:3:foo\n', /line 1: unexpected token/],
        ['no file segment', `. ${A}+3\n`, /line 1: no file segment/],
        ['a stream name without a dot', `foo ${A}+3 0:3:foo\n`, /line 1: stream name/],
        ['a locator after a segment', `. ${A}+3 0:3:foo ${B}+3\n`, /line 1: unexpected token/],
        ['a locator without size', `. ${A} 0:3:foo\n`, /unexpected token/],
        ['an uppercase hash', `. ${A.toUpperCase()}+3 0:3:foo\n`, /unexpected token/],
        ['two spaces', `. ${A}+3  0:3:foo\n`, /two spaces/],
        ['an empty line in the middle', `. ${A}+3 0:3:a\n\n. ${B}+3 0:3:b\n`, /line 2: empty line/],
    ];
    for (const [name, text, reason] of rows) {
        const got = parseManifest(text);
        t.type(got, 'string', name);
        t.match(got, reason, name);
    }
});
//# sourceMappingURL=manifest.test.js.map