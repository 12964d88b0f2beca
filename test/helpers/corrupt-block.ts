import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { md5 } from './volume-suite.js'

/** Ways a stored block file goes bad on disk. */
export const CORRUPTION_KINDS = ['bitflip', 'truncate', 'extend', 'zerofill', 'other-block', 'symlink', 'directory', 'fifo'] as const
export type CorruptionKind = (typeof CORRUPTION_KINDS)[number]

/** Kinds that leave something other than a regular file at the block path. */
export const IRREGULAR_KINDS: readonly CorruptionKind[] = ['symlink', 'directory', 'fifo']

let mkfifoChecked: boolean | undefined
/** Whether `mkfifo` exists here (Node has no API to make a FIFO). */
export function hasMkfifo(): boolean {
  if (mkfifoChecked === undefined) {
    try {
      execFileSync('mkfifo', ['--version'], { stdio: 'ignore' })
      mkfifoChecked = true
    } catch {
      mkfifoChecked = false
    }
  }
  return mkfifoChecked
}

export interface CorruptOptions {
  /** Seeded random numbers in [0, 1). */
  rng: () => number
  /** Another block's bytes, for `other-block`. */
  other: Buffer
  /** Where a symlink's target (a copy of the right bytes, outside the volume) goes. */
  scratchDir: string
}

/**
 * Corrupts the block file at `file` (whose hash is `hash`) in place. Byte
 * changes are checked to really change the MD5. A symlink points at a file
 * with the *right* bytes outside the volume: only never following links
 * makes it a failure.
 */
export async function corruptBlock(file: string, hash: string, kind: CorruptionKind, options: CorruptOptions): Promise<void> {
  const { rng } = options
  const data = await readFile(file)
  const at = (n: number): number => Math.floor(rng() * n)
  let bad: Buffer
  switch (kind) {
    case 'bitflip': {
      bad = Buffer.from(data)
      const i = at(bad.length)
      bad[i] = (bad[i] as number) ^ (1 << at(8))
      break
    }
    case 'truncate':
      bad = data.subarray(0, at(data.length))
      break
    case 'extend':
      bad = Buffer.concat([data, Buffer.alloc(1 + at(4096), 0x5a)])
      break
    case 'zerofill':
      bad = Buffer.alloc(data.length)
      break
    case 'other-block':
      bad = options.other
      break
    case 'symlink': {
      const target = path.join(options.scratchDir, `${hash}.${at(1e9)}`)
      await writeFile(target, data)
      await rm(file)
      await symlink(target, file)
      return
    }
    case 'directory':
      await rm(file)
      await mkdir(file)
      return
    case 'fifo':
      await rm(file)
      execFileSync('mkfifo', [file])
      return
  }
  if (md5(bad) === hash) bad = Buffer.concat([bad, Buffer.from([1])])
  await writeFile(file, bad)
}

/**
 * Lets every open() blocked on the FIFO at `file` go on: opening a FIFO
 * read-write never blocks (Linux), and the readers then read end-of-file.
 * Synchronous on purpose: the thread pool may be full of blocked opens.
 */
export function releaseFifo(file: string): void {
  try {
    closeSync(openSync(file, constants.O_RDWR | constants.O_NONBLOCK))
  } catch {
    // gone or renamed: nobody waits on it any more
  }
}
