import { createBlockSource, MiB } from './blocks.js';
import { memoryOf } from './children.js';
import { putBlock } from './load.js';
/**
 * Sends `puts` concurrent PUTs of distinct `blockSize` blocks to a freshly
 * started server and samples its VmRSS every 10 ms; VmHWM (the kernel's own
 * peak) catches a spike between samples. The server should be fresh so that
 * VmHWM does not remember an earlier phase.
 */
export async function measurePutMemory(agent, server, options = {}) {
    const puts = options.puts ?? 32;
    const blockSize = options.blockSize ?? 64 * MiB;
    const source = createBlockSource(blockSize);
    await new Promise((r) => setTimeout(r, 500));
    const idleRss = memoryOf(server.pid).rss;
    let peak = idleRss;
    const sampler = setInterval(() => {
        peak = Math.max(peak, memoryOf(server.pid).rss);
    }, 10);
    const start = performance.now();
    try {
        await Promise.all(Array.from({ length: puts }, () => putBlock(agent, server.url, source.next(), options.token)));
    }
    finally {
        clearInterval(sampler);
    }
    const seconds = (performance.now() - start) / 1000;
    const peakRss = Math.max(peak, memoryOf(server.pid).hwm);
    return { puts, blockSize, idleRss, peakRss, growth: peakRss - idleRss, seconds };
}
//# sourceMappingURL=memory-bench.js.map