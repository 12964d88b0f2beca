/** One change set per server, filled block by block in hash order. */
export class ChangeSets {
    limits;
    sets = new Map();
    constructor(servers, limits) {
        this.limits = limits;
        for (const server of servers) {
            this.sets.set(server.uuid, { server, pulls: [], trashes: [], deferredPulls: 0, deferredTrashes: 0, pullBytes: 0, trashBytes: 0 });
        }
    }
    /** Adds a block's pulls and trashes to their servers' sets. */
    add(decision, size) {
        for (const { server, item } of decision.pulls) {
            const set = this.sets.get(server);
            if (set.pulls.length < this.limits.pullLimit) {
                set.pulls.push(item);
                set.pullBytes += size;
            }
            else {
                set.deferredPulls++;
            }
        }
        for (const { server, item } of decision.trashes) {
            const set = this.sets.get(server);
            if (set.trashes.length < this.limits.trashLimit) {
                set.trashes.push(item);
                set.trashBytes += size;
            }
            else {
                set.deferredTrashes++;
            }
        }
    }
    get(uuid) {
        return this.sets.get(uuid);
    }
    /** Every set, in the order the servers were given. */
    list() {
        return [...this.sets.values()];
    }
}
//# sourceMappingURL=change-sets.js.map