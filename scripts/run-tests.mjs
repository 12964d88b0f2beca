#!/usr/bin/env node
// `npm test`: runs every compiled test file (dist/test/**/*.test.js) as its own
// `node FILE` process, several at a time, and condenses their TAP for people and
// CI: one line per file, the whole output of any failing file, the reliability
// suite's `# figure` lines, and last the line CI reads: `N passed, N failed`.
//
// Why not tap's runner: the test files are tap tests and run the same either
// way, but tap's runner adds ~0.8 s of CPU to every file (its process-info and
// mock loaders, source maps, a process database), ~60 s of CPU for the suite —
// a third of the 3-minute budget on 2 cores. `npx tap` still works (.taprc).
//
//   node scripts/run-tests.mjs [--jobs=N] [--timeout=S] [FILE|DIR …]
//
// --jobs: files in flight (default KEEP_TEST_JOBS or CPUs + 2: many files wait
// on child processes and sockets more than they compute). --timeout: seconds a
// file may run (TAP_TIMEOUT for tap's own timer; default 240: the process-heavy
// files take 10–20 s on a quiet machine, but a loaded one can stretch them
// tenfold), and a file still running after 2 × that is killed and counted failed (a failing
// file's whole output is also appended to .tap/failures.log). Files run
// longest first, by the durations of the last run (.tap/durations.json).
import { spawn } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import path from 'node:path'

const args = process.argv.slice(2)
const option = (name) => {
  const i = args.findIndex((a) => a.startsWith(`--${name}=`))
  return i < 0 ? undefined : args.splice(i, 1)[0].slice(name.length + 3)
}
const jobs = Number(option('jobs') ?? process.env.KEEP_TEST_JOBS ?? availableParallelism() + 2)
const timeoutS = Number(option('timeout') ?? process.env.TAP_TIMEOUT ?? 240)
for (const a of args) {
  if (a.startsWith('--')) {
    console.error(`run-tests: unknown option ${a} (known: --jobs=N, --timeout=S)`)
    process.exit(2)
  }
}
if (!(jobs >= 1) || !(timeoutS > 0)) {
  console.error('run-tests: --jobs and --timeout need positive numbers')
  process.exit(2)
}

function testFiles(target) {
  if (!existsSync(target)) throw new Error(`run-tests: ${target} does not exist (did tsc run?)`)
  if (!statSync(target).isDirectory()) return [target]
  return readdirSync(target, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? testFiles(path.join(target, e.name)) : e.name.endsWith('.test.js') ? [path.join(target, e.name)] : []))
}

const DURATIONS = '.tap/durations.json'
/** Every failing file's whole output, appended run after run. */
const FAILURES = '.tap/failures.log'
const last = existsSync(DURATIONS) ? JSON.parse(readFileSync(DURATIONS, 'utf8')) : {}
// Without a record (a fresh clone), the process-heavy directories go first.
const guess = (f) => (/\/(reliability|e2e)\//.test(f) ? 30_000 : 0) + statSync(f).size / 10
const files = [...new Set((args.length ? args : ['dist/test']).flatMap(testFiles))]
  .sort((a, b) => (last[b] ?? guess(b)) - (last[a] ?? guess(a)) || a.localeCompare(b))

let passed = 0
let failed = 0
let skipped = 0
let todo = 0
let n = 0
const durations = { ...last }

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now()
    // Its own process group, so a file killed on timeout takes the keepstores it started with it.
    const child = spawn(process.execPath, [file], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TAP_TIMEOUT: String(timeoutS) },
      detached: true,
    })
    running.add(child)
    const out = []
    const err = []
    let pending = ''
    child.stdout.on('data', (d) => {
      out.push(d)
      // Figures are worth seeing as they come (a soak runs for hours).
      pending += d.toString()
      const lines = pending.split('\n')
      pending = lines.pop()
      for (const line of lines) if (/^\s*# figure /.test(line)) console.log(line.trim())
    })
    child.stderr.on('data', (d) => err.push(d))
    const killer = setTimeout(() => killGroup(child), timeoutS * 2 * 1000)
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      running.delete(child)
      const ms = Date.now() - started
      durations[file] = ms
      const text = Buffer.concat(out).toString()
      const summary = /^# \{ total: .* \}$/m.exec(text)?.[0] ?? ''
      const count = (k) => Number(new RegExp(`${k}: (\\d+)`).exec(summary)?.[1] ?? 0)
      let fail = count('fail')
      if (code !== 0 && fail === 0) fail = 1 // crashed, killed or timed out without a failing assertion
      passed += count('pass')
      failed += fail
      skipped += count('skip')
      todo += count('todo')
      n++
      const why = signal ? ` (killed: ${signal}${ms >= timeoutS * 2000 ? `, still running after ${timeoutS * 2} s` : ''})` : code !== 0 ? ` (exit ${code})` : ''
      if (fail > 0) {
        const stderr = Buffer.concat(err).toString().trimEnd()
        const report = [text.trimEnd(), ...(stderr ? [stderr.split('\n').map((l) => `# stderr: ${l}`).join('\n')] : []), `not ok ${n} - ${file}${why} # time=${ms}ms`].join('\n')
        console.log(report)
        // Kept past a scrolled or tailed terminal: a rare failure is worth its whole output.
        mkdirSync('.tap', { recursive: true })
        appendFileSync(FAILURES, `# ${new Date().toISOString()}\n${report}\n`)
      } else {
        console.log(`ok ${n} - ${file} # time=${ms}ms`)
        // A skipped test says why in one line: show it (never a silent skip).
        for (const m of text.matchAll(/^\s*ok \d+ - (.*) # SKIP(.*)$/gm)) console.log(`# skip: ${file}: ${m[1]} #${m[2]}`)
      }
      resolve()
    })
  })
}

const running = new Set()
function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    // already gone
  }
}
// Ctrl-C or a CI cancel: the test files (and whatever they started) go too.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const child of running) killGroup(child)
    process.exit(130)
  })
}

const t0 = Date.now()
const queue = [...files]
await Promise.all(
  Array.from({ length: Math.min(jobs, queue.length) }, async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) await runFile(f)
  }),
)
mkdirSync('.tap', { recursive: true })
writeFileSync(DURATIONS, JSON.stringify(durations, null, 1))
console.log(`# ${files.length} files, ${jobs} at a time, ${((Date.now() - t0) / 1000).toFixed(1)} s`)
if (skipped || todo) console.log(`# skipped: ${skipped}, todo: ${todo}`)
if (failed) console.log(`# the failing files' output is also in ${FAILURES}`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
