// Child process of the crash test: writes random blocks into a directory
// volume until it is killed. Prints `started` once the volume is open and
// `ack <hash>` after each write() resolved (stdout to a pipe is synchronous
// on Linux, so an ack printed is an ack the parent will read).
// Usage: node crash-writer.js ROOT SEED
import { randomBytes } from 'node:crypto';
import { createDirectoryVolume } from '../../keepstore/volumes/directory-volume.js';
import { chunked, md5, seededRandom } from './volume-suite.js';
async function main(root, seed) {
    const random = seededRandom(seed);
    const volume = createDirectoryVolume({ uuid: 'zzzzz-nyw5e-0000000crashtest', root });
    await volume.open();
    process.stdout.write('started\n');
    const recent = [];
    for (;;) {
        const r = random();
        const limit = r < 0.6 ? 16 * 1024 : r < 0.9 ? 256 * 1024 : 3 * 1024 * 1024;
        const size = Math.floor(random() ** 2 * limit);
        // Now and then the same bytes again: the compare-and-touch path.
        const data = recent.length > 0 && random() < 0.1 ? recent[Math.floor(random() * recent.length)] : randomBytes(size);
        recent.push(data);
        if (recent.length > 8)
            recent.shift();
        const hash = md5(data);
        await volume.write(hash, chunked(data, 1 + Math.floor(random() * 256 * 1024)));
        process.stdout.write(`ack ${hash}\n`);
    }
}
const [root, seed] = process.argv.slice(2);
main(root ?? '', Number(seed)).catch((err) => {
    process.stderr.write(`crash-writer: ${String(err)}\n`);
    process.exit(1);
});
//# sourceMappingURL=crash-writer.js.map