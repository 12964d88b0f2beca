import t, { type Test } from 'tap'
import { md5hex } from '../../shared/hash.js'
import { serviceOrder } from '../../shared/rendezvous.js'
import { balanceBlock, type BlockDecision, type BlockState } from '../../datamanager/balance.js'
import { createTopology, type MountInfo } from '../../datamanager/topology.js'

// keep-balance's own balancer scenarios (services/keep-balance/balance_test.go), translated row for row:
// 16 servers zzzzz-bi6l4-%015x with one mount zzzzz-mount-%015x each, known blocks md5("%064x" of i)+64,
// replicas named by "slot" (position in the block's rendezvous order), put round-robin on a server's mounts,
// each 1 ns newer than the one before, all a day older than the TTL (`replList`). A row checks the
// slots pulled to and trashed from (sorted), mounts where keep-balance checks them, and the block's
// needed/unneeded/pulling counts (its `balancedBlockState`).

const NOW = 1_707_249_451_308_502_672n
const TTL = 3_600_000_000_000n // keep-balance's suite: signatureTTL 3600 s
const CUTOFF = NOW - TTL
const FIRST = CUTOFF - 86_400_000_000_000n // replList: TTL + one day old
const policy = { trashCutoff: CUTOFF }

const KNOWN_RENDEZVOUS = ['3eab2d5fc9681074', '097dba52e648f1c3', 'c5b4e023f8a7d691', '9d81c02e76a3bf54'].map((s) =>
  [...s].map((c) => parseInt(c, 16)),
)
const hex15 = (n: number): string => n.toString(16).padStart(15, '0')
const serverUuid = (i: number): string => `zzzzz-bi6l4-${hex15(i)}`
const knownHash = (i: number): string => md5hex(i.toString(16).padStart(64, '0'))

interface Server {
  uuid: string
  mounts: MountInfo[]
}

const baseMount = (uuid: string): MountInfo => ({
  uuid,
  priority: 0,
  replication: 1,
  allowWrite: true,
  allowTrash: true,
  storageClasses: ['default'],
  deviceId: '',
})

/** keep-balance's SetUpTest: 16 servers, one default mount each. */
function cluster(): Server[] {
  return Array.from({ length: 16 }, (_, i) => ({ uuid: serverUuid(i), mounts: [baseMount(`zzzzz-mount-${hex15(i)}`)] }))
}

interface Tester {
  known?: number
  desired: Record<string, number>
  current: number[]
  timestamps?: bigint[]
  shouldPull?: number[]
  shouldTrash?: number[]
  shouldPullMounts?: string[]
  shouldTrashMounts?: string[]
  expectBlockState?: { needed?: number; unneeded?: number; pulling?: number }
}

/** keep-balance's `try`: one block, what was pulled and trashed, by slot. */
function attempt(servers: Server[], row: Tester): { decision: BlockDecision; expected: unknown; got: unknown } {
  const known = row.known ?? 0
  const slotServer = (slot: number): Server => servers[KNOWN_RENDEZVOUS[known]![slot]!]!
  const next = new Map<Server, number>()
  const replicas = row.current.map((slot, i) => {
    const server = slotServer(slot)
    const n = next.get(server) ?? 0
    next.set(server, (n + 1) % server.mounts.length)
    return { server: server.uuid, mount: server.mounts[n]!.uuid, mtime: row.timestamps?.[i] ?? FIRST + BigInt(i) }
  })
  // keep-balance's Desired is a class → count map; ours is one count for a set of classes.
  const counts = new Set(Object.values(row.desired))
  if (counts.size > 1) throw new Error('a row with several counts cannot be translated')
  const replication = [...counts][0] ?? 0
  const classes = Object.keys(row.desired).filter((c) => row.desired[c]! > 0)
  const block: BlockState = {
    hash: knownHash(known),
    size: 64,
    replicas,
    want: replication === 0 ? undefined : { replication, classes },
  }
  const topology = createTopology(servers.map((s) => ({ uuid: s.uuid, url: `http://${s.uuid}.example:25107`, mounts: s.mounts })))
  const decision = balanceBlock(block, topology, policy)
  const slotOf = (uuid: string): number => KNOWN_RENDEZVOUS[known]!.indexOf(servers.findIndex((s) => s.uuid === uuid))
  const sorted = <T>(xs: T[]): T[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const got: Record<string, unknown> = {
    pull: sorted(decision.pulls.map((p) => slotOf(p.server))),
    trash: sorted(decision.trashes.map((x) => slotOf(x.server))),
  }
  const expected: Record<string, unknown> = { pull: sorted(row.shouldPull ?? []), trash: sorted(row.shouldTrash ?? []) }
  if (row.shouldPullMounts) {
    got.pullMounts = sorted(decision.pulls.map((p) => p.item.mount_uuid))
    expected.pullMounts = sorted(row.shouldPullMounts)
  }
  if (row.shouldTrashMounts) {
    got.trashMounts = sorted(decision.trashes.map((x) => x.item.mount_uuid))
    expected.trashMounts = sorted(row.shouldTrashMounts)
  }
  if (row.expectBlockState) {
    const b = decision.counts!.block
    got.blockState = { needed: b.needed, unneeded: b.unneeded, pulling: b.pulling }
    expected.blockState = { needed: 0, unneeded: 0, pulling: 0, ...row.expectBlockState }
  }
  return { decision, expected, got }
}

function tryRows(t: Test, servers: Server[], rows: Tester[]): void {
  for (const [i, row] of rows.entries()) {
    const { got, expected } = attempt(servers, row)
    t.same(got, expected, `row ${i + 1}: known ${row.known ?? 0}, desired ${JSON.stringify(row.desired)}, current ${row.current.join(',')}`)
  }
}

/** keep-balance's srvList: the servers at these slots of a known block's rendezvous order. */
const srvList = (servers: Server[], known: number, slots: number[]): Server[] => slots.map((s) => servers[KNOWN_RENDEZVOUS[known]![s]!]!)

t.test('keep-balance scenarios: our rendezvous order is keep-balance\'s knownRendezvous', async (t) => {
  const servers = cluster()
  for (let known = 0; known < 4; known++) {
    const order = serviceOrder(knownHash(known), servers, (s) => s.uuid).map((s) => servers.indexOf(s))
    t.same(order, KNOWN_RENDEZVOUS[known], `known block ${known}`)
  }
})

t.test('keep-balance scenarios: TestMultipleReplicasPerService', async (t) => {
  const servers = cluster()
  for (const [s, server] of servers.entries()) {
    // keep-balance names them zzzzz-mount-%015x of (s<<10)+i, which for server 0 repeats other servers'
    // mount uuids (harmless there, mounts are pointers); uuids are unique here, so 0x100 is added.
    for (let i = 0; i < 3; i++) server.mounts.push(baseMount(`zzzzz-mount-${hex15((s << 10) + i + 0x100)}`))
  }
  tryRows(t, servers, [
    { desired: { default: 2 }, current: [0, 0], shouldPull: [1] },
    { desired: { default: 2 }, current: [2, 2], shouldPull: [0, 1] },
    { desired: { default: 2 }, current: [0, 0, 1], shouldTrash: [0] },
    { desired: { default: 2 }, current: [1, 1, 0], shouldTrash: [1] },
    { desired: { default: 2 }, current: [1, 0, 1, 0, 2], shouldTrash: [0, 1, 2] },
    { desired: { default: 2 }, current: [1, 1, 1, 0, 2], shouldTrash: [1, 1, 2] },
    { desired: { default: 2 }, current: [1, 1, 2], shouldPull: [0], shouldTrash: [1] },
    { desired: { default: 2 }, current: [1, 1, 0], timestamps: [12345678n, 12345678n, 12345679n] },
    { desired: { default: 2 }, current: [1, 1], shouldPull: [0] },
  ])
})

t.test('keep-balance scenarios: TestSkipReadonly (a read-only server takes no pull)', async (t) => {
  const servers = cluster()
  for (const m of srvList(servers, 0, [3])[0]!.mounts) m.allowWrite = false // keep-balance: srv.ReadOnly clears AllowWrite only
  tryRows(t, servers, [{ desired: { default: 4 }, current: [0, 1], shouldPull: [2, 4], expectBlockState: { needed: 2, pulling: 2 } }])
})

t.test('keep-balance scenarios: TestAllowTrashWhenReadOnly', async (t) => {
  const servers = cluster()
  const mount = srvList(servers, 0, [3])[0]!.mounts[0]!
  mount.allowWrite = false
  mount.allowTrash = true
  tryRows(t, servers, [
    // can't pull to slot 3, so pull to slot 4 instead
    { desired: { default: 4 }, current: [0, 1], shouldPull: [2, 4], expectBlockState: { needed: 2, pulling: 2 } },
    // expect to be able to trash slot 3 in future, so pull to slot 1
    { desired: { default: 2 }, current: [0, 3], shouldPull: [1], expectBlockState: { needed: 2, pulling: 1 } },
    // trash excess from slot 3
    { desired: { default: 2 }, current: [0, 1, 3], shouldTrash: [3], expectBlockState: { needed: 2, unneeded: 1 } },
  ])
})

t.test('keep-balance scenarios: a read-only copy without allow_trash counts where it is, so nothing new is pulled for it (want = have && !allow_trash)', async (t) => {
  const servers = cluster()
  const mount = srvList(servers, 0, [7])[0]!.mounts[0]!
  mount.allowWrite = false
  mount.allowTrash = false
  tryRows(t, servers, [
    // Not a row of balance_test.go: what its initial `want` means. The copy at slot 7 is kept, slot 1 is not pulled.
    { desired: { default: 2 }, current: [0, 7], expectBlockState: { needed: 2 } },
    // With a copy at slot 1 too, the trashable extra goes (slot 1), never the read-only one.
    { desired: { default: 2 }, current: [0, 1, 7], shouldTrash: [1], expectBlockState: { needed: 2, unneeded: 1 } },
  ])
  const { decision } = attempt(servers, { desired: { default: 2 }, current: [0, 7] })
  t.equal(decision.category, 'ok', 'not misplaced: nothing to pull, run after run')
})

t.test('keep-balance scenarios: TestChangeStorageClasses', async (t) => {
  const servers = cluster()
  const mount = (uuid: string, classes: string[], deviceId: string): MountInfo => ({ ...baseMount(uuid), storageClasses: classes, deviceId })
  servers[9]!.mounts = [
    mount('zzzzz-mount-special00000009', ['special'], '9-special'),
    mount('zzzzz-mount-special20000009', ['special', 'special2'], '9-special-and-special2'),
  ]
  servers[13]!.mounts = [mount('zzzzz-mount-special2000000d', ['special2'], '13-special2'), mount('zzzzz-mount-00000000000000d', ['default'], '13-default')]
  tryRows(t, servers, [
    // If some storage classes are not satisfied, don't trash any excess replicas. (E.g., if someone desires
    // repl=1 on class=durable, and we have two copies on class=volatile, we should wait for pull to succeed
    // before trashing anything). Pull to slot 9 because that's the only server with the desired class "special".
    { known: 0, desired: { special: 1 }, current: [0, 1], shouldPull: [9], shouldPullMounts: ['zzzzz-mount-special20000009'] },
    // Once storage classes are satisfied, trash excess replicas that appear earlier in probe order but
    // aren't needed to satisfy the desired classes.
    { known: 0, desired: { special: 1 }, current: [0, 1, 9], shouldTrash: [0, 1] },
    // Pull to slot 5, the best server with class "special2".
    { known: 0, desired: { special2: 1 }, current: [0, 1], shouldPull: [5], shouldPullMounts: ['zzzzz-mount-special2000000d'] },
    // Pull to slot 5 and 9 to get replication 2 in desired class "special2".
    {
      known: 0,
      desired: { special2: 2 },
      current: [0, 1],
      shouldPull: [5, 9],
      shouldPullMounts: ['zzzzz-mount-special20000009', 'zzzzz-mount-special2000000d'],
    },
    // Pull to best probe position 0 (despite wrong storage class) if it's impossible to achieve desired
    // replication in the desired class (only slots 1 and 3 have special2).
    { known: 1, desired: { special2: 3 }, current: [3], shouldPull: [0, 1] },
    // Trash excess replica.
    { known: 3, desired: { special: 1 }, current: [0, 1], shouldTrash: [1] },
    // Leave one copy on slot 1 because slot 0 (server 9) only gives us repl=1.
    { known: 3, desired: { special: 2 }, current: [0, 1] },
  ])
  // Two rows want a different count per class ({default: 2, special: 1}). Here a block wants one count in
  // each of its classes (PROTOCOL §7: the maximum over its collections, in the union of their classes), so
  // they are {default: 2, special: 2} here; keep-balance's expectations still hold (a mount already wanted
  // for default counts toward special once server 9 has one special copy: distinct servers first).
  tryRows(t, servers, [
    // Pull to slot 9 because that's the only server with the desired class "special".
    { known: 0, desired: { default: 2, special: 2 }, current: [0, 1], shouldPull: [9], shouldPullMounts: ['zzzzz-mount-special20000009'] },
    // Slot 0 has a replica in "default", slot 1 has a replica in "special"; we need another replica in
    // "default", i.e., on slot 2.
    { known: 1, desired: { default: 2, special: 2 }, current: [0, 1], shouldPull: [2] },
  ])
})

t.test('keep-balance scenarios: TestVolumeReplication', async (t) => {
  const servers = cluster()
  servers[0]!.mounts[0]!.replication = 2
  servers[14]!.mounts[0]!.replication = 2
  tryRows(t, servers, [
    // block 0 rendezvous is 3,e,a -- so slot 1 has repl=2
    { known: 0, desired: { default: 2 }, current: [1], shouldPull: [0], expectBlockState: { needed: 1, pulling: 1 } },
    { known: 0, desired: { default: 2 }, current: [0, 1], expectBlockState: { needed: 2 } },
    { known: 0, desired: { default: 2 }, current: [0, 1, 2], shouldTrash: [2], expectBlockState: { needed: 2, unneeded: 1 } },
    { known: 0, desired: { default: 3 }, current: [0, 2, 3, 4], shouldPull: [1], shouldTrash: [4], expectBlockState: { needed: 3, unneeded: 1, pulling: 1 } },
    { known: 0, desired: { default: 3 }, current: [0, 1, 2, 3, 4], shouldTrash: [2, 3, 4], expectBlockState: { needed: 2, unneeded: 3 } },
    { known: 0, desired: { default: 4 }, current: [0, 1, 2, 3, 4], shouldTrash: [3, 4], expectBlockState: { needed: 3, unneeded: 2 } },
    // block 1 rendezvous is 0,9,7 -- so slot 0 has repl=2
    { known: 1, desired: { default: 2 }, current: [0], expectBlockState: { needed: 1 } },
    { known: 1, desired: { default: 3 }, current: [0], shouldPull: [1], expectBlockState: { needed: 1, pulling: 1 } },
    { known: 1, desired: { default: 4 }, current: [0], shouldPull: [1, 2], expectBlockState: { needed: 1, pulling: 2 } },
    { known: 1, desired: { default: 4 }, current: [2], shouldPull: [0, 1], expectBlockState: { needed: 1, pulling: 2 } },
    { known: 1, desired: { default: 4 }, current: [7], shouldPull: [0, 1, 2], expectBlockState: { needed: 1, pulling: 3 } },
    { known: 1, desired: { default: 2 }, current: [1, 2, 3, 4], shouldPull: [0], shouldTrash: [3, 4], expectBlockState: { needed: 2, unneeded: 2, pulling: 1 } },
    { known: 1, desired: { default: 2 }, current: [0, 1, 2], shouldTrash: [1, 2], expectBlockState: { needed: 1, unneeded: 2 } },
  ])
})

t.test('keep-balance scenarios: TestDecreaseReplTimestampCollision (one trash per equal mtime, the first in rendezvous order)', async (t) => {
  const servers = cluster()
  const mountAt = (slot: number): string => srvList(servers, 0, [slot])[0]!.mounts[0]!.uuid
  tryRows(t, servers, [
    { desired: { default: 2 }, current: [0, 1, 2], timestamps: [12345678n, 12345678n, 12345678n] },
    { desired: { default: 2 }, current: [0, 1, 2], timestamps: [12345678n, 10000000n, 10000000n] },
    // keep-balance's desired 0 (`{default: 0}`) wants nothing: it is an unreferenced block there and here.
    { desired: { default: 0 }, current: [0, 1, 2], timestamps: [12345678n, 12345678n, 12345678n], shouldTrash: [0], shouldTrashMounts: [mountAt(0)] },
    {
      desired: { default: 2 },
      current: [0, 1, 2, 5, 6],
      timestamps: [12345678n, 12345679n, 10000000n, 10000000n, 10000000n],
      shouldTrash: [2],
      shouldTrashMounts: [mountAt(2)],
    },
    {
      desired: { default: 2 },
      current: [0, 1, 2, 5, 6],
      timestamps: [12345678n, 12345679n, 12345671n, 10000000n, 10000000n],
      shouldTrash: [2, 5],
      shouldTrashMounts: [mountAt(2), mountAt(5)],
    },
    {
      desired: { default: 2 },
      current: [0, 1, 2, 5, 6],
      timestamps: [12345678n, 12345679n, 12345679n, 10000000n, 10000000n],
      shouldTrash: [5],
      shouldTrashMounts: [mountAt(5)],
    },
  ])
})

t.test('keep-balance scenarios: TestFixUnbalanced', async (t) => {
  tryRows(t, cluster(), [
    { desired: { default: 2 }, current: [2, 0], shouldPull: [1] },
    { desired: { default: 2 }, current: [2, 7], shouldPull: [0, 1] },
    // if only one of the pulls succeeds, we'll see this next:
    { desired: { default: 2 }, current: [2, 1, 7], shouldPull: [0], shouldTrash: [7] },
    // if both pulls succeed, we'll see this next:
    { desired: { default: 2 }, current: [2, 0, 1, 7], shouldTrash: [2, 7] },
    // unbalanced + excessive replication => pull + trash
    { desired: { default: 2 }, current: [2, 5, 7], shouldPull: [0, 1], shouldTrash: [7] },
  ])
})

t.test('keep-balance scenarios: TestIncreaseReplTimestampCollision (equal mtimes count as distinct copies when pulling)', async (t) => {
  tryRows(t, cluster(), [{ desired: { default: 4 }, current: [0, 1], timestamps: [12345678n, 12345678n], shouldPull: [2, 3] }])
})
