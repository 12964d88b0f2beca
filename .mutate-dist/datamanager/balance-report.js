import { CATEGORIES } from './balance.js';
export function createTotals() {
    const categories = {};
    for (const category of CATEGORIES)
        categories[category] = { blocks: 0, bytes: 0, replicas: 0 };
    return {
        categories,
        pulls: { items: 0, bytes: 0 },
        trashes: { items: 0, bytes: 0 },
        references: 0,
        dedupSavedBytes: 0,
    };
}
/** Adds one block and its decision to `totals` (mutates it). */
export function addDecision(totals, block, decision) {
    const category = totals.categories[decision.category];
    category.blocks++;
    category.bytes += block.size;
    category.replicas += block.replicas.length;
    totals.pulls.items += decision.pulls.length;
    totals.pulls.bytes += decision.pulls.length * block.size;
    totals.trashes.items += decision.trashes.length;
    totals.trashes.bytes += decision.trashes.length * block.size;
    if (block.want !== undefined) {
        const references = Math.max(1, block.want.references ?? 1);
        totals.references += references;
        totals.dedupSavedBytes += (references - 1) * block.size;
    }
}
//# sourceMappingURL=balance-report.js.map