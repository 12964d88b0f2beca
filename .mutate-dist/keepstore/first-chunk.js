/**
 * Resolves with the stream's first chunk (undefined for an empty stream) or
 * rejects with its first error, leaving the rest of the stream unread. A GET
 * waits for this before sending headers, so a block whose only chunk fails
 * verification becomes a 502 instead of a short body.
 */
export function firstChunk(stream) {
    return new Promise((resolve, reject) => {
        const cleanup = () => {
            stream.off('readable', onReadable);
            stream.off('end', onEnd);
            stream.off('error', onError);
        };
        const onReadable = () => {
            const chunk = stream.read();
            if (chunk === null)
                return;
            cleanup();
            resolve(chunk);
        };
        const onEnd = () => {
            cleanup();
            resolve(undefined);
        };
        const onError = (err) => {
            cleanup();
            reject(err);
        };
        stream.on('readable', onReadable);
        stream.on('end', onEnd);
        stream.on('error', onError);
    });
}
//# sourceMappingURL=first-chunk.js.map