import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { KeepError } from './errors.js';
function* pieces(json) {
    for (const piece of json)
        yield Buffer.from(piece);
}
/**
 * HTTP client for keepstores (undici). Every method consumes or hands over the
 * response body, so no socket is left busy. Non-2xx → KeepError whose message
 * starts with the status (`404 block not found`).
 */
export class KeepstoreClient {
    dispatcher;
    ownsDispatcher;
    token;
    constructor(options = {}) {
        this.ownsDispatcher = options.dispatcher === undefined;
        this.dispatcher =
            options.dispatcher ??
                new Agent({
                    keepAliveTimeout: 30_000,
                    connectTimeout: options.connectTimeoutMs ?? 10_000,
                    headersTimeout: options.headersTimeoutMs ?? 60_000,
                    bodyTimeout: options.bodyTimeoutMs ?? 120_000,
                    connections: 64,
                });
        this.token = options.token;
    }
    /** GET a block: resolves once headers arrive with 200; the body is the caller's to consume. */
    async getBlock(server, locator, options = {}) {
        const res = await this.send('GET', server, `/${locator}`, undefined, options);
        return res.body;
    }
    /**
     * PUT a JSON body (pull or trash list); resolves when the server answered 200.
     * An iterable of string pieces is streamed (chunked), so a list of 100 k items
     * need not exist as one string; iterate it afresh for each call.
     */
    async putJson(server, path, json, options = {}) {
        const body = typeof json === 'string' ? json : Readable.from(pieces(json), { objectMode: false });
        const res = await this.send('PUT', server, path, body, options, { 'content-type': 'application/json' });
        await res.body.dump();
    }
    /** GET and parse a JSON document (e.g. /mounts). */
    async getJson(server, path, options = {}) {
        const res = await this.send('GET', server, path, undefined, options);
        return (await res.body.json());
    }
    /** GET a streamed text body (e.g. an index); the caller consumes it. */
    async getStream(server, path, options = {}) {
        const res = await this.send('GET', server, path, undefined, options);
        return res.body;
    }
    async close() {
        if (this.ownsDispatcher)
            await this.dispatcher.close();
    }
    async send(method, server, path, body, options, extraHeaders = {}) {
        const token = options.token ?? this.token;
        const headers = { ...extraHeaders };
        if (token)
            headers.authorization = `Bearer ${token}`;
        let res;
        try {
            res = await request(new URL(path, server), {
                method,
                headers,
                dispatcher: this.dispatcher,
                ...(body !== undefined ? { body } : {}),
                ...(options.signal ? { signal: options.signal } : {}),
            });
        }
        catch (err) {
            const reason = err.code ?? err.message;
            throw new KeepError('KEEP_UNAVAILABLE', `${server}: ${reason}`, { cause: err });
        }
        if (res.statusCode !== 200) {
            const text = (await res.body.text().catch(() => '')).split('\n')[0]?.slice(0, 200) ?? '';
            throw new KeepError(res.statusCode === 404 ? 'KEEP_BLOCK_NOT_FOUND' : 'KEEP_UNAVAILABLE', `${res.statusCode} ${text}`.trim());
        }
        return res;
    }
}
//# sourceMappingURL=keepstore-client.js.map