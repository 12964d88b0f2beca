import t from 'tap';
import { EMPTY_BLOCK_HASH, isHash, md5hex } from '../../shared/hash.js';
t.test('md5hex: known digests of strings and bytes', async (t) => {
    const rows = [
        { data: '', hash: 'd41d8cd98f00b204e9800998ecf8427e' },
        { data: 'foo', hash: 'acbd18db4cc2f85cedef654fccc4a4d8' },
        { data: 'hello world', hash: '5eb63bbbe01eeed093cb22bb8f5acdc3' },
        { data: new Uint8Array([0x66, 0x6f, 0x6f]), hash: 'acbd18db4cc2f85cedef654fccc4a4d8' },
        { data: new Uint8Array(0), hash: 'd41d8cd98f00b204e9800998ecf8427e' },
    ];
    for (const { data, hash } of rows)
        t.equal(md5hex(data), hash, `md5 of ${JSON.stringify(String(data))}`);
    t.equal(md5hex('é'), md5hex(new Uint8Array([0xc3, 0xa9])), 'a string is hashed as UTF-8');
});
t.test('EMPTY_BLOCK_HASH is the md5 of zero bytes', async (t) => {
    t.equal(EMPTY_BLOCK_HASH, md5hex(''));
});
t.test('isHash accepts exactly 32 lowercase hex digits', async (t) => {
    const rows = [
        ['acbd18db4cc2f85cedef654fccc4a4d8', true],
        ['00000000000000000000000000000000', true],
        ['ffffffffffffffffffffffffffffffff', true],
        ['ACBD18DB4CC2F85CEDEF654FCCC4A4D8', false],
        ['acbd18db4cc2f85cedef654fccc4a4D8', false],
        ['acbd18db4cc2f85cedef654fccc4a4d', false],
        ['acbd18db4cc2f85cedef654fccc4a4d80', false],
        ['acbd18db4cc2f85cedef654fccc4a4dg', false],
        ['acbd18db4cc2f85cedef654fccc4a4d8\n', false],
        [' acbd18db4cc2f85cedef654fccc4a4d8', false],
        ['acbd18db4cc2f85cedef654fccc4a4d8+3', false],
        ['', false],
    ];
    for (const [s, ok] of rows)
        t.equal(isHash(s), ok, `${JSON.stringify(s)} → ${ok}`);
});
//# sourceMappingURL=hash.test.js.map