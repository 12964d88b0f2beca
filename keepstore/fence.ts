import { KeepError } from '../shared/errors.js'

/** The request header a datamanager's lists carry: its lock's revision (PROTOCOL §4). */
export const FENCE_HEADER = 'x-keep-fence'

const INT64_MAX = 2n ** 63n - 1n

/**
 * `X-Keep-Fence`: absent → undefined (an operator's list, accepted as ever);
 * otherwise a decimal int64 ≥ 0, as etcd revisions are. Anything else is a
 * 400: a list whose fence cannot be read is never applied.
 */
export function parseFence(header: string | string[] | undefined): bigint | undefined {
  if (header === undefined) return undefined
  const value = Array.isArray(header) ? undefined : header.trim()
  if (value === undefined || !/^(?:0|[1-9]\d{0,18})$/.test(value) || BigInt(value) > INT64_MAX) {
    throw new KeepError('KEEP_BAD_REQUEST', 'X-Keep-Fence must be one decimal int64')
  }
  return BigInt(value)
}

/**
 * Fencing of pull and trash lists (PROTOCOL §4). Every list replace goes
 * through {@link FenceGate.apply}, one at a time, pull and trash alike: a
 * list with a fence lower than the highest applied is refused (409,
 * `KEEP_FENCED`) before anything is written; any other list is written with
 * the highest fence so far, which the worklist store saves in the same synced
 * batch as the list itself. After a restart, the highest fence is the larger
 * of the two lists' saved fences.
 */
export interface FenceGate {
  /** The highest fence applied (0n before any). */
  readonly highest: bigint
  /**
   * Runs `replace` under the gate with the fence to save (a decimal string).
   * `fence` undefined: a list without the header, accepted whatever the fence.
   * @throws KeepError KEEP_FENCED when `fence` < {@link highest}; the current list is untouched.
   */
  apply<R>(fence: bigint | undefined, replace: (save: string) => Promise<R>): Promise<R>
}

export function createFenceGate(initial: bigint): FenceGate {
  let highest = initial
  let tail: Promise<unknown> = Promise.resolve()
  return {
    get highest() {
      return highest
    },
    apply(fence, replace) {
      const run = tail.then(async () => {
        if (fence !== undefined && fence < highest) {
          throw new KeepError('KEEP_FENCED', `fenced: this list's fence ${fence} is older than ${highest}, already applied`)
        }
        const save = fence !== undefined && fence > highest ? fence : highest
        const result = await replace(save.toString())
        highest = save
        return result
      })
      tail = run.catch(() => undefined)
      return run
    },
  }
}
