import { mkdir, readdir } from 'node:fs/promises'
import type { AbstractLevel, AbstractSublevel } from 'abstract-level'
import { Level } from 'level'
import { KeepError } from '../shared/errors.js'
import type { Logger } from '../shared/logger.js'

type Format = string | Buffer | Uint8Array
export type StateLevel = AbstractLevel<Format, string, string>
/** A named part of the state database: string keys and values, its own key space. */
export type StateSublevel = AbstractSublevel<StateLevel, Format, string, string>

/**
 * The keepstore's own state (the pull and trash worklists), a `level`
 * database in `stateDir` or in memory. It is never dropped or recreated
 * behind the operator's back: a database that cannot be opened as it is
 * stops the keepstore with a `KEEP_CONFIG` error naming the path.
 */
export interface StateDb {
  /** The directory, or undefined for an in-memory database. */
  readonly location: string | undefined
  /** The same name always gives the same key space (`'pull'`, `'trash'`). */
  sublevel(name: string): StateSublevel
  close(): Promise<void>
}

export interface StateDbOptions {
  logger?: Logger
}

function configError(path: string, reason: string, cause?: unknown): KeepError {
  return new KeepError('KEEP_CONFIG', `state database ${path}: ${reason}`, { cause })
}

/** The innermost message: level wraps the real reason (`LEVEL_LOCKED`, `LEVEL_CORRUPTION`) in `cause`. */
function reasonOf(err: unknown): string {
  let e: unknown = err
  while (e instanceof Error && e.cause instanceof Error) e = e.cause
  return e instanceof Error ? e.message : String(e)
}

/**
 * A write error of the state database as the caller should see it: a full
 * disk (LevelDB reports `IO error: …: No space left on device`) is
 * `KEEP_FULL` (507), anything else `KEEP_IO`.
 */
export function stateWriteError(err: unknown, what: string): KeepError {
  let e: unknown = err
  let full = false
  while (e instanceof Error) {
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC' || /ENOSPC|No space left on device/i.test(e.message)) full = true
    e = e.cause
  }
  return full
    ? new KeepError('KEEP_FULL', `${what}: the state directory is full`, { cause: err })
    : new KeepError('KEEP_IO', `${what}: ${reasonOf(err)}`, { cause: err })
}

/**
 * LevelDB with `createIfMissing` would start an empty database beside the
 * table files of one whose CURRENT was lost; refuse instead.
 */
async function checkNotOrphaned(dir: string): Promise<void> {
  const names = await readdir(dir)
  if (names.includes('CURRENT')) return
  const leftovers = names.filter((n) => n.startsWith('MANIFEST-') || n.endsWith('.ldb') || n.endsWith('.log'))
  if (leftovers.length > 0) {
    throw configError(dir, `CURRENT is missing but ${leftovers.length} database file(s) remain (${leftovers[0]}); restore or move them`)
  }
}

async function openDirectory(dir: string): Promise<StateLevel> {
  try {
    await mkdir(dir, { recursive: true })
    await checkNotOrphaned(dir)
  } catch (err) {
    if (err instanceof KeepError) throw err
    throw configError(dir, reasonOf(err), err)
  }
  const db = new Level<string, string>(dir)
  try {
    await db.open()
  } catch (err) {
    throw configError(dir, reasonOf(err), err)
  }
  return db
}

/**
 * Opens the state database: `level` at `dir` (created with its parents when
 * missing), or `memory-level` when `dir` is undefined. Corrupt, unreadable or
 * locked by another process → `KEEP_CONFIG` `state database <dir>: <reason>`.
 */
export async function openStateDb(dir: string | undefined, options: StateDbOptions = {}): Promise<StateDb> {
  let db: StateLevel
  if (dir === undefined) {
    // Loaded only for memory-only keepstores (tests, demos): not on a disk-backed start.
    const { MemoryLevel } = await import('memory-level')
    db = new MemoryLevel<string, string>()
    await db.open()
  } else {
    db = await openDirectory(dir)
  }
  options.logger?.info({ stateDir: dir ?? 'memory' }, 'state database open')
  const sublevels = new Map<string, StateSublevel>()
  return {
    location: dir,
    sublevel(name) {
      let sub = sublevels.get(name)
      if (sub === undefined) {
        sub = db.sublevel(name)
        sublevels.set(name, sub)
      }
      return sub
    },
    close: () => db.close(),
  }
}
