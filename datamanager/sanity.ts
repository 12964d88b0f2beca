import type { CollectionsSummary } from './collections.js'
import type { IndexStatus } from './indexes.js'
import type { RunState } from './state.js'
import type { MountInfo } from './topology.js'

/** Why a run sends no pull list and no non-empty trash list (PROTOCOL §8); codes are stable, tests and alerts use them. */
export type RefusalCode =
  | 'keepstore-unavailable'
  | 'duplicate-mount'
  | 'duplicate-device'
  | 'index-incomplete'
  | 'collections-unreadable'
  | 'no-collections'
  | 'malformed-collection'
  | 'collections-dropped'
  | 'references-dropped'
  | 'run-timeout'
  | 'index-line-too-long'
  | 'record-too-large'
  | 'trash-not-cleared'

export interface Refusal {
  code: RefusalCode
  /** One line for a person. */
  message: string
}

/** A configured keepstore and what its `GET /mounts` gave: `mounts` undefined when it did not answer. */
export interface ServerMounts {
  uuid: string
  url: string
  mounts: MountInfo[] | undefined
  error: string | undefined
}

/** A drop beyond this fraction since the last successful run looks like a truncated export. */
export const MAX_DROP = 0.1

/**
 * Refusals that are known once the mounts are in: a keepstore that did not
 * answer, a mount uuid on two servers (or twice on one), two mounts on one
 * device. Balance cannot even be built over duplicate mount uuids.
 */
export function checkMounts(servers: readonly ServerMounts[]): Refusal[] {
  const refusals: Refusal[] = []
  for (const s of servers) {
    if (s.mounts === undefined) {
      refusals.push({ code: 'keepstore-unavailable', message: `keepstore ${s.uuid} (${s.url}) did not answer: ${s.error ?? 'no answer'}` })
    }
  }
  const mountOwner = new Map<string, string>()
  const deviceOwner = new Map<string, string>()
  for (const s of servers) {
    for (const m of s.mounts ?? []) {
      const where = `${s.uuid}/${m.uuid}`
      const other = mountOwner.get(m.uuid)
      if (other !== undefined) {
        refusals.push({ code: 'duplicate-mount', message: `mount ${m.uuid} reported by ${other} and ${s.uuid}` })
      }
      mountOwner.set(m.uuid, s.uuid)
      if (m.deviceId === '') continue
      const sameDevice = deviceOwner.get(m.deviceId)
      if (sameDevice !== undefined) {
        refusals.push({ code: 'duplicate-device', message: `device_id ${m.deviceId} reported by ${sameDevice} and ${where}` })
      }
      deviceOwner.set(m.deviceId, where)
    }
  }
  return refusals
}

export interface SanityInput {
  mounts: Refusal[]
  indexes: readonly IndexStatus[]
  collections: CollectionsSummary
  referencedBlocks: number
  previous: RunState
  /** `--force`: overrides the drop check only. */
  force: boolean
}

/** Every reason to refuse this run, in a fixed order; empty when it may commit. */
export function checkSanity(input: SanityInput): Refusal[] {
  const refusals = [...input.mounts]
  for (const index of input.indexes) {
    if (index.state !== 'complete') {
      refusals.push({
        code: index.state === 'line-too-long' ? 'index-line-too-long' : 'index-incomplete',
        message: `index of ${index.server}/${index.mount} ${index.state}${index.error === undefined ? '' : `: ${index.error}`}`,
      })
    }
  }
  const c = input.collections
  if (c.unreadable !== undefined) {
    refusals.push({ code: 'collections-unreadable', message: `cannot read collections: ${c.unreadable}` })
  } else if (c.collections === 0) {
    refusals.push({ code: 'no-collections', message: 'no collection was read' })
  }
  if (c.malformed > 0) {
    const first = c.malformedRecords[0]
    const where = first === undefined ? '' : `; first: ${first.file}:${first.line}: ${first.reason}`
    refusals.push({ code: 'malformed-collection', message: `${c.malformed} malformed collection record(s)${where}` })
  }
  if (c.tooLarge > 0) {
    const first = c.tooLargeRecords[0]
    const where = first === undefined ? '' : `; first: ${first.uuid ?? `${first.file}:${first.line}`} (${first.uuid === undefined ? '' : `${first.file}:${first.line}, `}${first.bytes} bytes or more)`
    refusals.push({ code: 'record-too-large', message: `${c.tooLarge} collection record(s) larger than datamanager.maxRecordBytes${where}` })
  }
  const last = input.previous.lastSuccess
  if (last !== undefined && !input.force) {
    if (dropped(last.collections, c.collections)) {
      refusals.push({
        code: 'collections-dropped',
        message: `collections fell from ${last.collections} to ${c.collections} since the last successful run (a truncated export?); --force to accept`,
      })
    }
    if (dropped(last.referencedBlocks, input.referencedBlocks)) {
      refusals.push({
        code: 'references-dropped',
        message: `referenced blocks fell from ${last.referencedBlocks} to ${input.referencedBlocks} since the last successful run; --force to accept`,
      })
    }
  }
  return refusals
}

function dropped(before: number, now: number): boolean {
  return before > 0 && now < before * (1 - MAX_DROP)
}
