import { md5hex } from './hash.js'
import { md5Head, md5WithTail } from './md5-short.js'

const ARVADOS_UUID_LENGTH = 27
const SUFFIX_LENGTH = 15

/** The part of a uuid rendezvous hashes: the last 15 characters of a 27-character uuid, else all of it. */
export function rendezvousSuffix(uuid: string): string {
  return uuid.length === ARVADOS_UUID_LENGTH ? uuid.slice(ARVADOS_UUID_LENGTH - SUFFIX_LENGTH) : uuid
}

/** Weights of the items being ranked, four big-endian words each (they compare as the hex digests would). */
let weights = new Uint32Array(64)
const digest = new Uint32Array(4)
const head = new Int32Array(16)

/** `md5(hash + suffix)` of item `i` into `weights`; `packed` when `head` holds the hash (see md5Head). */
function weigh(i: number, hash: string, suffix: string, packed: boolean): void {
  if (!packed || !md5WithTail(head, suffix, digest)) {
    const hex = md5hex(hash + suffix)
    for (let k = 0; k < 4; k++) digest[k] = parseInt(hex.slice(8 * k, 8 * k + 8), 16)
  }
  weights.set(digest, 4 * i)
}

/** Compares the weights of items x and y: <0, 0, >0 as their digests' hex would compare. */
function compareWeights(x: number, y: number): number {
  for (let k = 0; k < 4; k++) {
    const a = weights[4 * x + k]!
    const b = weights[4 * y + k]!
    if (a !== b) return a < b ? -1 : 1
  }
  return 0
}

/**
 * Sorts `items` by a comparator over their indexes, given each item's weight
 * `md5(hash + suffix(uuid))` computed once (as words: no digest string per
 * item). Sorting indexes, not wrapper objects, keeps the per-block cost to
 * one digest per item.
 */
function rank<T>(hash: string, items: readonly T[], uuidOf: (item: T) => string, compare: (x: number, y: number) => number): T[] {
  const n = items.length
  if (n < 2) return items.slice()
  if (weights.length < 4 * n) weights = new Uint32Array(4 * n)
  const order = new Array<number>(n)
  const packed = md5Head(hash, head)
  for (let i = 0; i < n; i++) {
    weigh(i, hash, rendezvousSuffix(uuidOf(items[i]!)), packed)
    order[i] = i
  }
  order.sort(compare)
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
  return rank(hash, services, uuidOf, (x, y) => compareWeights(y, x))
}

const mountUuid = (m: { uuid: string }): string => m.uuid

/**
 * Mounts inside one server, first to try first (PROTOCOL §6): `priority`
 * descending, then `md5hex(hash + suffix(uuid))` ascending. Returns a new array.
 */
export function mountOrder<T extends { uuid: string; priority: number }>(hash: string, mounts: readonly T[]): T[] {
  return rank(hash, mounts, mountUuid, (x, y) => mounts[y]!.priority - mounts[x]!.priority || compareWeights(x, y))
}
