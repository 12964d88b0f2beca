import { md5hex } from './hash.js'

const ARVADOS_UUID_LENGTH = 27
const SUFFIX_LENGTH = 15

/** The part of a uuid rendezvous hashes: the last 15 characters of a 27-character uuid, else all of it. */
export function rendezvousSuffix(uuid: string): string {
  return uuid.length === ARVADOS_UUID_LENGTH ? uuid.slice(ARVADOS_UUID_LENGTH - SUFFIX_LENGTH) : uuid
}

/** Hex digests compare as strings in the same order as their bytes. */
function compareHex(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Sorts `items` by a comparator over their indexes, given each item's weight
 * `md5hex(hash + suffix(uuid))` computed once. Sorting indexes, not wrapper
 * objects, keeps the per-block cost to one digest string per item.
 */
function rank<T>(
  hash: string,
  items: readonly T[],
  uuidOf: (item: T) => string,
  compare: (weights: readonly string[], x: number, y: number) => number,
): T[] {
  const n = items.length
  if (n < 2) return items.slice()
  const weights = new Array<string>(n)
  const order = new Array<number>(n)
  for (let i = 0; i < n; i++) {
    weights[i] = md5hex(hash + rendezvousSuffix(uuidOf(items[i]!)))
    order[i] = i
  }
  order.sort((x, y) => compare(weights, x, y))
  const out = new Array<T>(n)
  for (let i = 0; i < n; i++) out[i] = items[order[i]!]!
  return out
}

/**
 * Servers for a block, best first (PROTOCOL §6): `md5hex(hash + suffix(uuid))`
 * descending. Clients write to the first N; the datamanager wants replicas there.
 * Returns a new array.
 */
export function serviceOrder<T>(hash: string, services: readonly T[], uuidOf: (s: T) => string): T[] {
  return rank(hash, services, uuidOf, (w, x, y) => compareHex(w[y]!, w[x]!))
}

const mountUuid = (m: { uuid: string }): string => m.uuid

/**
 * Mounts inside one server, first to try first (PROTOCOL §6): `priority`
 * descending, then `md5hex(hash + suffix(uuid))` ascending. Returns a new array.
 */
export function mountOrder<T extends { uuid: string; priority: number }>(hash: string, mounts: readonly T[]): T[] {
  return rank(hash, mounts, mountUuid, (w, x, y) => mounts[y]!.priority - mounts[x]!.priority || compareHex(w[x]!, w[y]!))
}
