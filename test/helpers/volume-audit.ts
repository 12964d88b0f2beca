import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs'

/** What a directory volume's root holds, each file checked against the MD5 its name claims. */
export interface VolumeAudit {
  /** Live blocks whose bytes match their name: hash → size. */
  blocks: Map<string, number>
  /** Trashed copies whose bytes match their hash: file name (`abc/<hash>.trash.<deadline>`) → hash. */
  trashed: Map<string, string>
  /** Block or trash files whose bytes do not match their name: partial or corrupt. */
  bad: string[]
  /** Hidden temp files (`.<hash>.tmp-…`, `.keep-volume.json.tmp-…`) still present. */
  temps: string[]
}

const BLOCK_RE = /^[0-9a-f]{32}$/
const TRASH_RE = /^([0-9a-f]{32})\.trash\.\d+(?:\.\d+)?$/
const PREFIX_RE = /^[0-9a-f]{3}$/

/** Checked files by path → `ino:size:mtime`, so repeated audits of a growing volume hash only what changed. */
export type AuditCache = Map<string, { key: string; md5: string }>

function fileMd5(path: string, cache: AuditCache | undefined): { md5: string; size: number } | undefined {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false })
  if (!st) return undefined
  const key = `${st.ino}:${st.size}:${st.mtimeNs}`
  const hit = cache?.get(path)
  if (hit && hit.key === key) return { md5: hit.md5, size: Number(st.size) }
  const hash = createHash('md5')
  const buf = Buffer.allocUnsafe(1024 * 1024)
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      hash.update(buf.subarray(0, n))
    }
  } finally {
    closeSync(fd)
  }
  const md5 = hash.digest('hex')
  cache?.set(path, { key, md5 })
  return { md5, size: Number(st.size) }
}

/**
 * Reads every file of a directory volume (the process using it should be
 * stopped or quiet): a file named like a block or a trashed copy must hold
 * exactly the bytes of that MD5.
 */
export function auditVolume(root: string, cache?: AuditCache): VolumeAudit {
  const audit: VolumeAudit = { blocks: new Map(), trashed: new Map(), bad: [], temps: [] }
  for (const name of readdirSync(root)) {
    if (name.includes('.tmp-')) audit.temps.push(name)
    if (!PREFIX_RE.test(name)) continue
    for (const entry of readdirSync(`${root}/${name}`)) {
      const rel = `${name}/${entry}`
      const path = `${root}/${rel}`
      if (entry.startsWith('.')) {
        if (entry.includes('.tmp-')) audit.temps.push(rel)
        continue
      }
      const trash = TRASH_RE.exec(entry)
      const hash = BLOCK_RE.test(entry) ? entry : trash?.[1]
      if (!hash) continue
      const got = fileMd5(path, cache)
      if (!got) continue // renamed or removed while we looked (the keepstore is running)
      if (got.md5 !== hash) audit.bad.push(rel)
      else if (trash) audit.trashed.set(rel, hash)
      else audit.blocks.set(hash, got.size)
    }
  }
  return audit
}
