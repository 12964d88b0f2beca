import { isDown, type MemberLiveness } from '../shared/membership.js'

/** Who a run plans without (PROTOCOL §8), and what it remembers for the next run. */
export interface MembershipPlan {
  /** Configured keepstores with no live registration for at least `membershipSettle`, in config order. */
  down: string[]
  /** uuid → since when (ms since the epoch) it has been seen absent: kept in the run state, for the next run. */
  absentSince: Record<string, number>
}

export interface MembershipPlanInput {
  /** Every configured keepstore as the membership view sees it now. */
  members: readonly MemberLiveness[]
  /** `absentSince` of the last run. */
  previous: Readonly<Record<string, number>> | undefined
  settleMs: number
  now: number
}

/**
 * A keepstore absent from etcd for `settleMs` or longer is down. How long it
 * has been absent is what this process saw, or — when it was already absent
 * at the first listing, as in every `--once` run — what the last run saw, so
 * a cron datamanager also learns that a keepstore is gone for good. A live
 * member clears its record; an unknown one (etcd unreachable) is never down
 * and keeps its record as it was.
 */
export function planMembership(input: MembershipPlanInput): MembershipPlan {
  const down: string[] = []
  const absentSince: Record<string, number> = {}
  for (const m of input.members) {
    const before = input.previous?.[m.uuid]
    if (m.state === 'unknown') {
      if (before !== undefined) absentSince[m.uuid] = before
      continue
    }
    if (m.state !== 'absent' || m.since === undefined) continue
    const since = !m.observedChange && before !== undefined && before < m.since ? before : m.since
    absentSince[m.uuid] = since
    if (isDown({ state: 'absent', since }, input.settleMs, input.now)) down.push(m.uuid)
  }
  return { down, absentSince }
}
