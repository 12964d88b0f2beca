import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
/**
 * proper-lockfile on `<stateDir>/datamanager.lock` (a directory, created
 * atomically, its mtime refreshed while held; released on process exit).
 */
export function createFileLock(stateDir, options = {}) {
    const lockfilePath = path.join(stateDir, 'datamanager.lock');
    return {
        description: lockfilePath,
        async tryAcquire() {
            await mkdir(stateDir, { recursive: true });
            let release;
            try {
                release = await lockfile.lock(stateDir, {
                    lockfilePath,
                    realpath: false,
                    retries: 0,
                    stale: options.staleMs ?? 60_000,
                    onCompromised: options.onCompromised ?? (() => { }),
                });
            }
            catch (err) {
                if (err.code === 'ELOCKED')
                    return undefined;
                throw err;
            }
            let released;
            return { release: () => (released ??= release()) };
        },
    };
}
//# sourceMappingURL=lock.js.map