/** Columns left-aligned, two spaces apart, a header row in capitals. */
export function formatTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const all = [header.map((h) => h.toUpperCase()), ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)))
  return all
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

/** Nanoseconds since the epoch (decimal text) as an ISO time, to the millisecond. */
export function isoFromNs(ns: string): string {
  const ms = Number(BigInt(ns) / 1_000_000n)
  return Number.isFinite(ms) ? new Date(ms).toISOString() : ns
}
