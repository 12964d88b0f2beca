import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { createLogger, redactSignatures, silentLogger } from '../../shared/logger.js';
/** A destination that keeps each JSON line, parsed. */
function capture() {
    const records = [];
    return { records, write: (line) => void records.push(JSON.parse(line)) };
}
t.test('createLogger writes JSON lines with level, name, message and fields', async (t) => {
    const sink = capture();
    const log = createLogger({ destination: sink, name: 'keepstore', level: 'debug' });
    log.info({ status: 200, bytes: 3 }, 'request done');
    log.child({ requestId: 'req-1' }).debug('child line');
    log.trace('below the level');
    t.equal(sink.records.length, 2, 'trace is below debug');
    t.match(sink.records[0], { level: 30, name: 'keepstore', msg: 'request done', status: 200, bytes: 3 });
    t.type(sink.records[0].time, 'number');
    t.match(sink.records[1], { level: 20, requestId: 'req-1', msg: 'child line' });
});
t.test('createLogger defaults to level info', async (t) => {
    const sink = capture();
    const log = createLogger({ destination: sink });
    log.debug('hidden');
    log.info('shown');
    t.same(sink.records.map((r) => r.msg), ['shown']);
});
t.test('tokens, authorization headers, signatures and config secrets are redacted', async (t) => {
    const secret = 'v2/zzzzz-gj3su-000000000000000/secret';
    const rows = [
        ['request authorization header', { req: { headers: { authorization: `Bearer ${secret}`, host: 'keep0' } } },
            (r) => r.req.headers.authorization],
        ['bare headers', { headers: { authorization: `OAuth2 ${secret}` } }, (r) => r.headers.authorization],
        ['top-level token', { token: secret }, (r) => r.token],
        ['nested token', { client: { token: secret } }, (r) => r.client.token],
        ['signature', { signature: secret }, (r) => r.signature],
        ['cluster config', { cluster: { systemRootToken: secret } }, (r) => r.cluster.systemRootToken],
        ['whole config', { config: { cluster: { blobSigningKey: secret } } },
            (r) => r.config.cluster.blobSigningKey],
    ];
    for (const [name, fields, pick] of rows) {
        const sink = capture();
        createLogger({ destination: sink }).info(fields, name);
        t.equal(pick(sink.records[0]), '[redacted]', `${name}: replaced`);
        t.notOk(JSON.stringify(sink.records[0]).includes(secret), `${name}: the secret appears nowhere`);
    }
});
t.test('redactSignatures hides +A hints in paths and locators', async (t) => {
    const sig = `A${'0123456789'.repeat(4)}@7fffffff`;
    const h = 'acbd18db4cc2f85cedef654fccc4a4d8';
    const rows = [
        [`/${h}+3+${sig}`, `/${h}+3+A[redacted]`],
        [`/${h}+3+${sig}+K@zzzzz`, `/${h}+3+A[redacted]+K@zzzzz`],
        [`/${h}+3+${sig}?x=1`, `/${h}+3+A[redacted]?x=1`],
        [`/${h}+3+K@zzzzz`, `/${h}+3+K@zzzzz`],
        ['/index', '/index'],
    ];
    for (const [input, want] of rows)
        t.equal(redactSignatures(input), want, input);
});
t.test('pretty output is human text through a stream, not JSON', async (t) => {
    const out = new PassThrough();
    t.teardown(() => out.destroy());
    const log = createLogger({ destination: out, pretty: true });
    const data = once(out, 'data');
    log.info({ token: 'secret-token' }, 'pretty line');
    const [chunk] = (await data);
    const text = chunk.toString();
    t.match(text, /INFO.*pretty line/);
    t.notOk(text.trimStart().startsWith('{'), 'not a JSON line');
    t.notOk(text.includes('secret-token'), 'redaction applies to pretty output too');
});
t.test('silentLogger logs nothing at any level', async (t) => {
    const log = silentLogger();
    t.equal(log.level, 'silent');
    t.notOk(log.isLevelEnabled('fatal'));
});
//# sourceMappingURL=logger.test.js.map