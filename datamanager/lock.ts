import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import lockfile from 'proper-lockfile'

/** A held lock; `release` is idempotent. */
export interface LockHandle {
  release(): Promise<void>
}

/**
 * One active datamanager per cluster (DESIGN §5). The default is a file lock
 * in `stateDir`; a cluster-wide lease (etcd) can implement the same
 * interface for multi-host deployments.
 */
export interface Lock {
  /** Takes the lock without waiting: `undefined` when another instance holds it. */
  tryAcquire(): Promise<LockHandle | undefined>
  /** Where the lock lives, for the "lock held" message. */
  readonly description: string
}

export interface FileLockOptions {
  /** A lock not refreshed for this long belongs to a dead process and is taken over (default 60 s). */
  staleMs?: number
  /** Called if the lock was lost while held (its directory removed or taken over). */
  onCompromised?(err: Error): void
}

/**
 * proper-lockfile on `<stateDir>/datamanager.lock` (a directory, created
 * atomically, its mtime refreshed while held; released on process exit).
 */
export function createFileLock(stateDir: string, options: FileLockOptions = {}): Lock {
  const lockfilePath = path.join(stateDir, 'datamanager.lock')
  return {
    description: lockfilePath,
    async tryAcquire() {
      await mkdir(stateDir, { recursive: true })
      let release: () => Promise<void>
      try {
        release = await lockfile.lock(stateDir, {
          lockfilePath,
          realpath: false,
          retries: 0,
          stale: options.staleMs ?? 60_000,
          onCompromised: options.onCompromised ?? (() => {}),
        })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ELOCKED') return undefined
        throw err
      }
      let released: Promise<void> | undefined
      return { release: () => (released ??= release()) }
    },
  }
}
