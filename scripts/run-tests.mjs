#!/usr/bin/env node
// Runs tap with its raw TAP reporter and condenses the stream for people and CI:
// one line per test file, the whole subtree of any failing file, and, last,
// the line CI reads: `N passed, N failed` (tap itself prints no such line).
// Extra arguments go to tap (e.g. a test file to run alone).
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const tapBin = require.resolve('tap/package.json').replace(/package\.json$/, 'dist/esm/run.mjs')
const child = spawn(process.execPath, [tapBin, '--reporter=tap', ...process.argv.slice(2)], {
  stdio: ['ignore', 'pipe', 'inherit'],
})

let buffer = []
let summary = null
let topLevelFailed = 0
const lines = createInterface({ input: child.stdout })
lines.on('line', (line) => {
  const top = /^(not ok|ok) \d+ - (.*)$/.exec(line)
  if (top) {
    if (top[1] === 'not ok') {
      topLevelFailed++
      for (const l of buffer) console.log(l)
    }
    console.log(line)
    buffer = []
    return
  }
  const s = /^# (\{ total: .* \})$/.exec(line)
  if (s) summary = s[1]
  // Bail-outs, and the reliability suite's measured figures, are worth seeing as they happen.
  if (/^Bail out!/.test(line)) console.log(line)
  if (/^\s*# figure /.test(line)) console.log(line.trim())
  buffer.push(line)
})

child.on('close', (code, signal) => {
  for (const l of buffer) if (/^# /.test(l)) console.log(l)
  let pass = 0
  let fail = 0
  if (summary) {
    pass = Number(/pass: (\d+)/.exec(summary)?.[1] ?? 0)
    fail = Number(/fail: (\d+)/.exec(summary)?.[1] ?? 0)
    const skip = Number(/skip: (\d+)/.exec(summary)?.[1] ?? 0)
    const todo = Number(/todo: (\d+)/.exec(summary)?.[1] ?? 0)
    if (skip || todo) console.log(`# skipped: ${skip}, todo: ${todo}`)
  }
  // A file that crashed or timed out may report no failing assertion: count it.
  if (fail === 0 && (code !== 0 || topLevelFailed > 0)) fail = Math.max(1, topLevelFailed)
  console.log(`${pass} passed, ${fail} failed`)
  process.exit(code === 0 && fail === 0 ? 0 : (code || 1))
})
