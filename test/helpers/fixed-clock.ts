// Preloaded into a child keepstore or datamanager (`node --import <this file>`)
// by tests that need an exact clock across processes: the programs read time
// through Date.now (their injectable default), so with KEEP_TEST_NOW_MS set,
// "older than blobSigningTTL" can be tested to the nanosecond. Never used by
// the programs themselves.
const fixed = process.env.KEEP_TEST_NOW_MS
if (fixed !== undefined && /^\d+$/.test(fixed)) {
  const ms = Number(fixed)
  Date.now = () => ms
}

export {}
