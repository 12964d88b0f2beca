import { createHash } from 'node:crypto';
import { isLosslessNumber, parse as parseLossless } from 'lossless-json';
import { z } from 'zod';
import { KeepError } from './errors.js';
import { parseLocator } from './locator.js';
/** int64, as Keep's Go structs hold `block_mtime`. */
const MAX_MTIME = 2n ** 63n - 1n;
const INTEGER_RE = /^[0-9]+$/;
function fail(issues, input, message) {
    issues.push({ code: 'custom', message, input });
    return z.NEVER;
}
const requiredString = () => z.string({ error: (iss) => (iss.input === undefined ? 'missing' : 'not a string') });
const locatorSchema = requiredString().superRefine((text, ctx) => {
    try {
        if (parseLocator(text).size === undefined)
            fail(ctx.issues, text, 'no size hint');
    }
    catch (err) {
        fail(ctx.issues, text, err instanceof Error ? err.message : String(err));
    }
});
/** Keep's Go clients send `""` (or null) for "no mount": both mean absent. */
function mountSchema(ctx) {
    return z
        .string({ error: 'not a string' })
        .nullish()
        .transform((uuid, c) => {
        if (uuid === null || uuid === undefined || uuid === '')
            return undefined;
        if (!ctx.isKnownMount(uuid))
            return fail(c.issues, uuid, `unknown mount ${uuid}`);
        return uuid;
    });
}
function serverSchema(ctx) {
    return requiredString().superRefine((text, c) => {
        let url;
        try {
            url = new URL(text);
        }
        catch {
            fail(c.issues, text, `${text} is not a URL`);
            return;
        }
        if (url.protocol !== 'http:' && url.protocol !== 'https:')
            fail(c.issues, text, `${text} is not an http(s) URL`);
        else if (!ctx.isKnownServer(text))
            fail(c.issues, text, `${text} is not a keepstore of this cluster`);
    });
}
/** A JSON number (lossless) or a decimal string, as an exact bigint. */
const mtimeSchema = z.unknown().transform((value, c) => {
    if (value === undefined)
        return fail(c.issues, value, 'missing');
    const text = isLosslessNumber(value) ? value.value : typeof value === 'string' ? value : undefined;
    if (text === undefined)
        return fail(c.issues, value, 'not a number');
    if (!INTEGER_RE.test(text))
        return fail(c.issues, value, `${text} is not a non-negative integer`);
    const mtime = BigInt(text);
    if (mtime > MAX_MTIME)
        return fail(c.issues, value, `${text} is beyond int64`);
    return mtime;
});
// z.object (not strictObject): unknown keys on items are ignored and dropped,
// because Keep clients may add fields we have no use for.
function pullItemSchema(ctx) {
    return z.object({
        locator: locatorSchema,
        servers: z
            .array(serverSchema(ctx), { error: (iss) => (iss.input === undefined ? 'missing' : 'not an array') })
            .min(1, { error: 'empty' }),
        mount_uuid: mountSchema(ctx),
    }, { error: 'not an object' });
}
function trashItemSchema(ctx) {
    return z.object({ locator: locatorSchema, block_mtime: mtimeSchema, mount_uuid: mountSchema(ctx) }, { error: 'not an object' });
}
/** `item 3: servers[1]: message`, or just the message for the list itself. */
function issueLine(issue) {
    const [index, ...rest] = issue.path;
    if (index === undefined)
        return issue.message;
    let where = '';
    for (const part of rest) {
        where += typeof part === 'number' ? `[${part}]` : `${where === '' ? '' : '.'}${String(part)}`;
    }
    return where === '' ? `item ${String(index)}: ${issue.message}` : `item ${String(index)}: ${where}: ${issue.message}`;
}
function parseList(body, item) {
    let json;
    try {
        json = parseLossless(body);
    }
    catch (err) {
        throw new KeepError('KEEP_BAD_REQUEST', `invalid JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const result = z.array(item, { error: 'not an array' }).safeParse(json);
    if (!result.success) {
        const first = result.error.issues[0];
        throw new KeepError('KEEP_BAD_REQUEST', first === undefined ? 'invalid list' : issueLine(first));
    }
    return result.data;
}
function withoutEmptyMount(item) {
    if (item.mount_uuid === undefined)
        delete item.mount_uuid;
    return item;
}
/** Validates a `PUT /pull` body (PROTOCOL §4). Throws `KEEP_BAD_REQUEST` with one line saying what and where. */
export function parsePullList(body, ctx) {
    return parseList(body, pullItemSchema(ctx)).map(withoutEmptyMount);
}
/** Validates a `PUT /trash` body (PROTOCOL §5). `block_mtime` comes out exact, beyond 2^53. */
export function parseTrashList(body, ctx) {
    return parseList(body, trashItemSchema(ctx)).map(withoutEmptyMount);
}
function pullItemJson(item) {
    const mount = item.mount_uuid === undefined ? '' : `,"mount_uuid":${JSON.stringify(item.mount_uuid)}`;
    return `{"locator":${JSON.stringify(item.locator)},"servers":${JSON.stringify(item.servers)}${mount}}`;
}
// Built by hand: JSON.stringify cannot write a bigint as a bare number (and Node 20 lacks JSON.rawJSON).
function trashItemJson(item) {
    const mount = item.mount_uuid === undefined ? '' : `,"mount_uuid":${JSON.stringify(item.mount_uuid)}`;
    return `{"locator":${JSON.stringify(item.locator)},"block_mtime":${item.block_mtime.toString()}${mount}}`;
}
export function serializePullList(items) {
    return `[${items.map(pullItemJson).join(',')}]`;
}
/** `block_mtime` is written as a bare JSON number with every digit. */
export function serializeTrashList(items) {
    return `[${items.map(trashItemJson).join(',')}]`;
}
/** SHA-256 hex of a list body, as logged and reported by `GET /pull` and `GET /trash`. */
export function listDigest(body) {
    return createHash('sha256').update(body).digest('hex');
}
/** Items read back from a keepstore's own state: the cluster may have changed since, so servers and mounts are not checked. */
const ANYTHING = { isKnownServer: () => true, isKnownMount: () => true };
function decodeOne(text, parseAll) {
    const [item] = parseAll(`[${text}]`, ANYTHING);
    if (item === undefined)
        throw new KeepError('KEEP_BAD_REQUEST', 'empty item');
    return item;
}
export const pullItemCodec = {
    encode: pullItemJson,
    decode: (text) => decodeOne(text, parsePullList),
};
export const trashItemCodec = {
    encode: trashItemJson,
    decode: (text) => decodeOne(text, parseTrashList),
};
//# sourceMappingURL=worklist-items.js.map