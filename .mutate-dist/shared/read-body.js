import { KeepError } from './errors.js';
/** Reads a request body into memory up to `limit` bytes; beyond it → KEEP_TOO_LARGE (413). */
export async function readBody(req, limit) {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit)
        throw new KeepError('KEEP_TOO_LARGE', `body exceeds ${limit} bytes`);
    const chunks = [];
    let size = 0;
    for await (const chunk of req) {
        size += chunk.length;
        if (size > limit)
            throw new KeepError('KEEP_TOO_LARGE', `body exceeds ${limit} bytes`);
        chunks.push(chunk);
    }
    return Buffer.concat(chunks, size);
}
//# sourceMappingURL=read-body.js.map