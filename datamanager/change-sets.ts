import type { PullItem, TrashItem } from '../shared/worklist-items.js'
import type { BlockDecision } from './balance.js'
import type { ServerRef } from './indexes.js'

/**
 * What one keepstore is to be sent: its complete pull and trash lists, each
 * capped (`pullLimit`, `trashLimit`); items past the cap are only counted,
 * and the next run asks again. Holding these in memory is bounded by the caps.
 */
export interface ChangeSet {
  server: ServerRef
  pulls: PullItem[]
  trashes: TrashItem[]
  deferredPulls: number
  deferredTrashes: number
  pullBytes: number
  trashBytes: number
}

export interface ChangeSetLimits {
  pullLimit: number
  trashLimit: number
}

/** One change set per server, filled block by block in hash order. */
export class ChangeSets {
  private readonly sets = new Map<string, ChangeSet>()

  constructor(
    servers: readonly ServerRef[],
    private readonly limits: ChangeSetLimits,
  ) {
    for (const server of servers) {
      this.sets.set(server.uuid, { server, pulls: [], trashes: [], deferredPulls: 0, deferredTrashes: 0, pullBytes: 0, trashBytes: 0 })
    }
  }

  /** Adds a block's pulls and trashes to their servers' sets. */
  add(decision: BlockDecision, size: number): void {
    for (const { server, item } of decision.pulls) {
      if (this.room(server, 'pull') > 0) this.addPull(server, item, size)
      else this.defer(server, 'pull', 1)
    }
    for (const { server, item } of decision.trashes) {
      if (this.room(server, 'trash') > 0) this.addTrash(server, item, size)
      else this.defer(server, 'trash', 1)
    }
  }

  /** Items the server's list of `kind` still takes before its cap. */
  room(server: string, kind: 'pull' | 'trash'): number {
    const set = this.sets.get(server)!
    return kind === 'pull' ? this.limits.pullLimit - set.pulls.length : this.limits.trashLimit - set.trashes.length
  }

  /** Adds one pull item (the caller checked {@link room}); `size` is the block's. */
  addPull(server: string, item: PullItem, size: number): void {
    const set = this.sets.get(server)!
    set.pulls.push(item)
    set.pullBytes += size
  }

  addTrash(server: string, item: TrashItem, size: number): void {
    const set = this.sets.get(server)!
    set.trashes.push(item)
    set.trashBytes += size
  }

  /** Counts `n` items past the cap of the server's list of `kind`. */
  defer(server: string, kind: 'pull' | 'trash', n: number): void {
    const set = this.sets.get(server)!
    if (kind === 'pull') set.deferredPulls += n
    else set.deferredTrashes += n
  }

  get(uuid: string): ChangeSet | undefined {
    return this.sets.get(uuid)
  }

  /** Every set, in the order the servers were given. */
  list(): ChangeSet[] {
    return [...this.sets.values()]
  }
}
