import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { Level } from 'level'

export type SpillDb = Level<string, string>

/**
 * The run's scratch space on disk (`<stateDir>/spill`): a few `level`
 * databases, created fresh for one run and deleted after it. Whatever a
 * crashed run left there is removed first (the caller holds the lock).
 */
export interface Spill {
  /** The directory (for spilled files other than databases: name them so they do not clash). */
  readonly dir: string
  /** Opens a new, empty database named `name` inside the spill. */
  open(name: string): Promise<SpillDb>
  /** Closes every database and deletes the directory. */
  destroy(): Promise<void>
}

export async function createSpill(dir: string): Promise<Spill> {
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  const dbs: SpillDb[] = []
  return {
    dir,
    async open(name) {
      const db = await openSpillDb(path.join(dir, name))
      dbs.push(db)
      return db
    },
    async destroy() {
      await Promise.allSettled(dbs.map((db) => db.close()))
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/**
 * Opens (creating it when absent) a `level` database shaped for spills: few
 * open files of small size, so its memory stays bounded however large it
 * grows. LevelDB maps every open table file into memory, and mapped pages
 * count as RSS: ~64 × 256 KiB, plus up to a few 4 MiB level-0 files.
 */
export async function openSpillDb(dir: string): Promise<SpillDb> {
  const db = new Level<string, string>(dir, {
    keyEncoding: 'utf8',
    valueEncoding: 'utf8',
    compression: false,
    maxOpenFiles: 64,
    maxFileSize: 256 << 10,
    writeBufferSize: 4 << 20,
    cacheSize: 4 << 20,
  })
  await db.open()
  return db
}
