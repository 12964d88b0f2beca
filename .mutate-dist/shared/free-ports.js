import net from 'node:net';
/** Ports the OS says are free now on loopback (tests, benchmarks, local tools; racy by nature). */
export async function freePorts(n) {
    const servers = await Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
        const s = net.createServer();
        s.listen(0, '127.0.0.1', () => resolve(s));
    })));
    const ports = servers.map((s) => s.address().port);
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    return ports;
}
//# sourceMappingURL=free-ports.js.map