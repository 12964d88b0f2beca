import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { writeFileAtomic } from './atomic-file.js'
import type { MountInfo } from './topology.js'

/**
 * What one run leaves for the next (`<stateDir>/last-run.json`): the counts
 * of the last successful run, so a truncated collections export (a sudden
 * drop) is noticed, and the servers and mounts last sent trash lists, so a
 * change of layout first clears every trash list.
 */
export interface RunState {
  lastSuccess: { at: string; collections: number; referencedBlocks: number } | undefined
  /** Server uuid → its url and mounts, sorted ({@link topologyKey}). */
  topology: Record<string, string[]> | undefined
  /** With etcd: keepstore uuid → since when (ms since the epoch) it has been seen absent (a cron run learns who is down). */
  absentSince?: Record<string, number>
}

const stateSchema = z.object({
  lastSuccess: z
    .object({ at: z.string(), collections: z.number().int().min(0), referencedBlocks: z.number().int().min(0) })
    .optional(),
  topology: z.record(z.string(), z.array(z.string())).optional(),
  absentSince: z.record(z.string(), z.number()).optional(),
})

export const EMPTY_STATE: RunState = { lastSuccess: undefined, topology: undefined }

/**
 * Reads the state; a missing file is the empty state. An unreadable or
 * invalid file is reported through `onInvalid` and treated as empty: the
 * run then clears every trash list first, and skips only the drop check.
 */
export async function readRunState(file: string, onInvalid: (reason: string) => void): Promise<RunState> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onInvalid(`${file}: ${(err as Error).message}`)
    return EMPTY_STATE
  }
  try {
    const parsed = stateSchema.parse(JSON.parse(text))
    return { lastSuccess: parsed.lastSuccess, topology: parsed.topology, ...(parsed.absentSince === undefined ? {} : { absentSince: parsed.absentSince }) }
  } catch (err) {
    onInvalid(`${file}: ${(err as Error).message.split('\n')[0]}`)
    return EMPTY_STATE
  }
}

export async function writeRunState(file: string, state: RunState): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`)
}

/** What of a mount counts toward the layout (PROTOCOL §8); fields a caller leaves out are not compared. */
export type LayoutMount = { uuid: string } & Partial<Pick<MountInfo, 'deviceId' | 'allowWrite' | 'allowTrash' | 'storageClasses' | 'replication'>>

/**
 * Server uuid → its url (`url <url>`) and one entry per mount (uuid,
 * device_id, allow_write, allow_trash, replication, classes), sorted: the
 * shape kept in {@link RunState.topology}.
 */
export function topologyKey(servers: ReadonlyArray<{ uuid: string; url?: string; mounts: ReadonlyArray<LayoutMount> }>): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  for (const s of [...servers].sort((a, b) => (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0))) {
    out[s.uuid] = [...(s.url === undefined ? [] : [`url ${s.url}`]), ...s.mounts.map(mountKey)].sort()
  }
  return out
}

function mountKey(m: LayoutMount): string {
  const parts = [m.uuid]
  if (m.deviceId !== undefined) parts.push(`device=${m.deviceId}`)
  if (m.allowWrite !== undefined) parts.push(`write=${m.allowWrite}`)
  if (m.allowTrash !== undefined) parts.push(`trash=${m.allowTrash}`)
  if (m.replication !== undefined) parts.push(`replication=${m.replication}`)
  if (m.storageClasses !== undefined) parts.push(`classes=${[...m.storageClasses].sort().join(',')}`)
  return parts.join(' ')
}

/** True unless both describe the same servers with the same mounts (no previous one counts as a change). */
export function topologyChanged(previous: Record<string, string[]> | undefined, current: Record<string, string[]>): boolean {
  if (previous === undefined) return true
  return JSON.stringify(sortKeys(previous)) !== JSON.stringify(sortKeys(current))
}

function sortKeys(t: Record<string, string[]>): Array<[string, string[]]> {
  return Object.keys(t)
    .sort()
    .map((k) => [k, [...t[k]!].sort()])
}
