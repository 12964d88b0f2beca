/**
 * Merges ascending async sequences into one ascending sequence (a k-way merge
 * with a small binary heap). Each source is pulled one item ahead, so memory is
 * O(number of sources). Equal items keep source order (stable by source index).
 */
export async function* mergeSorted(sources, compare) {
    const heap = [];
    const less = (a, b) => {
        const c = compare(a.value, b.value);
        return c < 0 || (c === 0 && a.source < b.source);
    };
    const push = (h) => {
        heap.push(h);
        let i = heap.length - 1;
        while (i > 0) {
            const p = (i - 1) >> 1;
            if (!less(heap[i], heap[p]))
                break;
            [heap[i], heap[p]] = [heap[p], heap[i]];
            i = p;
        }
    };
    const pop = () => {
        const top = heap[0];
        const last = heap.pop();
        if (heap.length > 0) {
            heap[0] = last;
            let i = 0;
            for (;;) {
                const l = 2 * i + 1;
                const r = l + 1;
                let m = i;
                if (l < heap.length && less(heap[l], heap[m]))
                    m = l;
                if (r < heap.length && less(heap[r], heap[m]))
                    m = r;
                if (m === i)
                    break;
                [heap[i], heap[m]] = [heap[m], heap[i]];
                i = m;
            }
        }
        return top;
    };
    const iterators = sources.map((s) => s[Symbol.asyncIterator]());
    try {
        const firsts = await Promise.all(iterators.map((it) => it.next()));
        firsts.forEach((r, source) => {
            if (!r.done)
                push({ value: r.value, source, it: iterators[source] });
        });
        while (heap.length > 0) {
            const head = pop();
            yield head.value;
            const r = await head.it.next();
            if (!r.done)
                push({ value: r.value, source: head.source, it: head.it });
        }
    }
    finally {
        await Promise.allSettled(iterators.map((it) => it.return?.()));
    }
}
//# sourceMappingURL=merge-sorted.js.map