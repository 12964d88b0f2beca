import { execFileSync } from 'node:child_process'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'

export const NS_PER_S = 1_000_000_000n

/** A file's mtime in nanoseconds, exactly (stat with bigint). */
export function mtimeNs(file: string): bigint {
  return statSync(file, { bigint: true }).mtimeNs
}

/**
 * Sets a file's mtime to exactly `ns` nanoseconds since the epoch. Node's
 * `fs.utimes` cannot: libuv keeps only microseconds of a fractional seconds
 * value (1700000000.123456789 is stored as …123456000), so this calls GNU
 * `touch -d @S.NNNNNNNNN`, which passes a timespec through. Throws when the
 * file system did not keep the value to the nanosecond.
 */
export function setMtimeNs(file: string, ns: bigint): void {
  const seconds = ns / NS_PER_S
  const fraction = (ns % NS_PER_S).toString().padStart(9, '0')
  execFileSync('touch', ['-c', '-m', '-d', `@${seconds}.${fraction}`, file])
  const stored = mtimeNs(file)
  if (stored !== ns) throw new Error(`mtime of ${file}: set ${ns}, stored ${stored}`)
}

/** Why nanosecond mtimes cannot be set in `dir` (no GNU touch, a coarse file system), or undefined when they can. */
export function nanosecondMtimesUnsupported(dir: string): string | undefined {
  const probe = path.join(dir, '.ns-probe')
  writeFileSync(probe, '')
  try {
    setMtimeNs(probe, 1_600_000_000_123_456_789n)
    return undefined
  } catch (err) {
    return `needs nanosecond mtimes (GNU touch on a file system that keeps ns): ${(err as Error).message}`
  }
}

/** Every block and trash file under the volume roots, as `<root>/<prefix>/<name>`, sorted (dot files skipped). */
export function volumeFiles(roots: readonly string[]): string[] {
  const out: string[] = []
  for (const root of new Set(roots)) {
    for (const sub of readdirSync(root)) {
      if (sub.startsWith('.') || !/^[0-9a-f]{3}$/.test(sub)) continue
      for (const name of readdirSync(path.join(root, sub))) if (!name.startsWith('.')) out.push(path.join(root, sub, name))
    }
  }
  return out.sort()
}

/** Hashes whose live block file is in `root` (trashed copies are `<hash>.trash.<deadline>`, not live). */
export function liveHashes(root: string): Set<string> {
  return new Set(volumeFiles([root]).map((f) => path.basename(f)).filter((n) => /^[0-9a-f]{32}$/.test(n)))
}

/** Trashed copies of `hash` in `root`. */
export function trashedCopies(root: string, hash: string): string[] {
  return volumeFiles([root]).filter((f) => path.basename(f).startsWith(`${hash}.trash.`))
}

/** True when every locator's (or hash's) block is live in `volume.root`. */
export function liveHashesOf(volume: { root: string }, locators: readonly string[]): boolean {
  const live = liveHashes(volume.root)
  return locators.every((l) => live.has(l.slice(0, 32)))
}
