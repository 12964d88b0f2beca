import t from 'tap'
import { planMembership } from '../../datamanager/membership-plan.js'
import { createMembershipTrigger } from '../../datamanager/membership-trigger.js'
import { silentLogger } from '../../shared/logger.js'
import type { LivenessState, MemberLiveness, MembershipChange, MembershipView } from '../../shared/membership.js'

const NOW = 1_000_000
const SETTLE = 30_000

function member(state: LivenessState, since?: number, observedChange = true): MemberLiveness {
  return { uuid: 'ks', url: 'http://ks', state, since, observedChange, registration: undefined }
}

const rows: Array<{ name: string; m: MemberLiveness; previous?: number; down: boolean; record: number | undefined }> = [
  { name: 'live', m: member('live', NOW - 99_000), previous: NOW - 99_000, down: false, record: undefined },
  { name: 'gone exactly the settle time', m: member('absent', NOW - SETTLE), down: true, record: NOW - SETTLE },
  { name: 'gone 1 ms less than the settle time', m: member('absent', NOW - SETTLE + 1), down: false, record: NOW - SETTLE + 1 },
  { name: 'absent at the first listing, the last run saw it gone long ago', m: member('absent', NOW, false), previous: NOW - 60_000, down: true, record: NOW - 60_000 },
  { name: 'absent at the first listing, never seen gone before', m: member('absent', NOW, false), down: false, record: NOW },
  { name: 'seen leaving just now: an old record is from an earlier absence', m: member('absent', NOW - 1, true), previous: NOW - 60_000, down: false, record: NOW - 1 },
  { name: 'unknown (etcd unreachable): never down, the record kept', m: member('unknown'), previous: NOW - 60_000, down: false, record: NOW - 60_000 },
]

t.test('membership plan: who is down, and what the next run remembers', async (t) => {
  for (const row of rows) {
    const plan = planMembership({
      members: [row.m],
      previous: row.previous === undefined ? undefined : { ks: row.previous },
      settleMs: SETTLE,
      now: NOW,
    })
    t.same(plan.down, row.down ? ['ks'] : [], `${row.name}: down`)
    t.same(plan.absentSince.ks, row.record, `${row.name}: absentSince`)
  }
})

/** A view whose members and changes the test sets by hand. */
function fakeView(members: MemberLiveness[]): MembershipView & { change(c: MembershipChange): void } {
  const listeners = new Set<(c: MembershipChange) => void>()
  return {
    current: true,
    ready: async () => true,
    members: () => members,
    stateOf: () => 'unknown',
    onChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    close: async () => undefined,
    change: (c) => listeners.forEach((l) => l(c)),
  }
}

/**
 * Node arms a timer from the event loop's cached clock, which a loaded
 * machine leaves behind Date.now() by some milliseconds: a timer may fire
 * that much "early" as Date.now() measures it (the wait once measured 44 ms
 * of a 50 ms settle). The settle is long enough that this slack is small.
 */
const SETTLE_MS = 150
const TIMER_SLACK_MS = 30

const aborted = (signal: AbortSignal): Promise<number> => {
  const started = Date.now()
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(Date.now() - started), { once: true }))
}

t.test('membership trigger: a change wakes the wait after the settle time; one that settles during a run wakes the next wait at once, once', async (t) => {
  const view = fakeView([member('live')])
  const trigger = createMembershipTrigger(view, SETTLE_MS, silentLogger())
  t.teardown(() => trigger.close())
  const wait = trigger.next()
  view.change({ uuid: 'ks', state: 'absent', at: Date.now() })
  t.ok((await aborted(wait)) >= SETTLE_MS - TIMER_SLACK_MS, 'woken after the settle time')
  trigger.runStarting()
  view.change({ uuid: 'ks', state: 'live', at: Date.now() })
  await new Promise((r) => setTimeout(r, SETTLE_MS + 30)) // the run takes longer than the settle time
  t.ok(trigger.next().aborted, 'the next wait ends at once')
  trigger.runStarting()
  const quiet = trigger.next()
  await new Promise((r) => setTimeout(r, SETTLE_MS + 30))
  t.notOk(quiet.aborted, 'and only once')
})

t.test('membership trigger: a keepstore already absent when the service starts → a run once the settle time has passed', async (t) => {
  const trigger = createMembershipTrigger(fakeView([member('absent', Date.now(), false)]), SETTLE_MS, silentLogger())
  t.teardown(() => trigger.close())
  t.ok((await aborted(trigger.next())) >= SETTLE_MS - TIMER_SLACK_MS)
})
