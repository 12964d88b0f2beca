import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import lockfile from 'proper-lockfile'

/** A held lock; `release` is idempotent. */
export interface LockHandle {
  release(): Promise<void>
  /**
   * A cluster-wide lock's fence (etcd: its create revision, a decimal int64
   * string): every list of the run carries it as `X-Keep-Fence` (PROTOCOL §4).
   * Undefined for the file lock: lists go unfenced, as before.
   */
  fence?: string
  /** Aborts if the lock is lost while held: the run sends nothing more and exits 3. */
  lost?: AbortSignal
}

/**
 * One active datamanager per cluster (DESIGN §5). The default is a file lock
 * in `stateDir`; a cluster-wide lease (etcd) can implement the same
 * interface for multi-host deployments.
 */
export interface Lock {
  /** Takes the lock without waiting: `undefined` when another instance holds it; throws `KEEP_UNAVAILABLE` when it cannot tell (etcd unreachable). */
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

/**
 * Both locks, `local` first: with etcd, the file lock still keeps two
 * instances on one host off one `stateDir`, and the cluster lock gives the
 * fence and the lost signal.
 */
export function combineLocks(local: Lock, cluster: Lock): Lock {
  return {
    description: `${cluster.description} (and ${local.description})`,
    async tryAcquire() {
      const first = await local.tryAcquire()
      if (first === undefined) return undefined
      let second: LockHandle | undefined
      try {
        second = await cluster.tryAcquire()
      } finally {
        if (second === undefined) await first.release()
      }
      if (second === undefined) return undefined
      const held = second
      return {
        ...(held.fence === undefined ? {} : { fence: held.fence }),
        ...(held.lost === undefined ? {} : { lost: held.lost }),
        release: async () => {
          await held.release()
          await first.release()
        },
      }
    },
  }
}
