/**
 * A cheap stand-in keepstore for the datamanager benchmark: one mount whose
 * index of N blocks is generated on the fly, sorted, deterministically, so
 * millions of blocks cost no disk and no memory. Serves GET /mounts,
 * GET /mounts/<uuid>/blocks (then the final empty line), and accepts
 * PUT /pull and PUT /trash (body read and counted, then dropped).
 *
 * Run as a child process: `node dist/bench/fake-keepstore.js <blocks> <mount uuid> <mtime offset>`;
 * it prints `{"port": N}` on stdout once listening, and exits on SIGTERM.
 */
import http from 'node:http';
import { fileURLToPath } from 'node:url';
const TWO_48 = 2 ** 48;
/** A fixed, old mtime (ns): every block is past any TTL. */
export const BASE_MTIME = 1600000000000000000n;
/**
 * Hash of block `i` of `n`: 12 hex digits that grow with `i` (so the
 * index is sorted by construction, and spread over the whole hash space),
 * then 20 pseudo-random ones.
 */
export function blockHash(i, n) {
    const head = Math.floor((i * TWO_48) / n)
        .toString(16)
        .padStart(12, '0');
    let x = (i + 0x9e3779b9) | 0;
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    const a = ((x ^ (x >>> 16)) >>> 0).toString(16).padStart(8, '0');
    let y = Math.imul(x ^ 0x27d4eb2f, 0x165667b1);
    y ^= y >>> 15;
    const b = (y >>> 0).toString(16).padStart(8, '0');
    const c = ((i * 2654435761) >>> 16 & 0xffff).toString(16).padStart(4, '0');
    return head + a + b + c;
}
/** Size of block `i`: 1 MiB plus a little, so byte totals are plausible. */
export function blockSize(i) {
    return 1_048_576 + (i % 4096);
}
function serve(blocks, mount, mtimeOffset) {
    const mountsJson = JSON.stringify([
        { uuid: mount, device_id: `fake:${mount}`, allow_write: true, allow_trash: true, replication: 1, storage_classes: { default: true }, priority: 0 },
    ]);
    const base = BASE_MTIME + mtimeOffset;
    let received = 0;
    return http.createServer((req, res) => {
        if (req.method === 'GET' && req.url === '/mounts') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(mountsJson);
        }
        else if (req.method === 'GET' && req.url === `/mounts/${mount}/blocks`) {
            res.writeHead(200, { 'content-type': 'text/plain' });
            void streamIndex(res, blocks, base);
        }
        else if (req.method === 'PUT' && (req.url === '/pull' || req.url === '/trash')) {
            req.on('data', (chunk) => (received += chunk.length));
            req.on('end', () => res.end());
        }
        else {
            res.writeHead(400);
            res.end('Bad Request\n');
        }
    });
}
async function streamIndex(res, blocks, base) {
    const mtime = Number(base % 1000000000n);
    const high = (base / 1000000000n).toString();
    let chunk = '';
    for (let i = 0; i < blocks; i++) {
        // mtime = base + i ns, written as its seconds part then 9 digits of ns (no BigInt per line).
        chunk += `${blockHash(i, blocks)}+${blockSize(i)} ${high}${String(mtime + (i % 1000)).padStart(9, '0')}\n`;
        if (chunk.length >= 64 * 1024) {
            if (!res.write(chunk))
                await new Promise((resolve) => res.once('drain', resolve));
            chunk = '';
            if (res.destroyed)
                return;
        }
    }
    res.end(`${chunk}\n`);
}
if (process.argv[1] === fileURLToPath(import.meta.url)) {
    const [blocks, mount, offset] = process.argv.slice(2);
    const server = serve(Number(blocks), mount ?? 'zzzzz-nyw5e-000000000000000', BigInt(offset ?? '0'));
    server.listen(0, '127.0.0.1', () => {
        process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
    });
    process.on('SIGTERM', () => {
        server.closeAllConnections();
        server.close(() => process.exit(0));
    });
}
//# sourceMappingURL=fake-keepstore.js.map