#!/usr/bin/env node
// A small mutation check over the compiled JS of the safety-critical modules.
// For each module: parse dist/<module>.js (TypeScript's parser reads JS), make
// one mutant per site (operator swaps, boundary shifts, ±1 on numbers,
// true/false, dropped `!`, removed call statements, if-conditions forced),
// run the module's scoped test files against a private copy of dist/ with a
// per-mutant timeout, and count killed/survived. Survivors are printed with
// the TypeScript file:line (via the source map, first mapping of the JS line:
// it may be a line off where tsc splits a statement), the compiled
// dist/file:line, and the changed code.
//
//   npm run mutate                      # every module below (bounded ~30 min)
//   npm run mutate -- signer auth       # some modules
//   npm run mutate -- --list            # the modules and their test files
//   npm run mutate -- --json out.json   # also write the results as JSON
//   npm run mutate -- --max-minutes 20  # stop starting new mutants after that
//   npm run mutate -- worklist --only-survivors-of out.json   # rerun an earlier run's survivors
//
// Equivalent and accepted survivors are listed in test/MUTATION.md.
import { spawn } from 'node:child_process'
import { cpSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const ts = require('typescript')
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** module name → the compiled file(s) mutated and the test files that must catch it. */
export const MODULES = {
  signer: { files: ['shared/signer.js'], tests: ['shared/signer.test.js'] },
  auth: { files: ['shared/auth.js'], tests: ['shared/auth.test.js'] },
  'hashing-stream': { files: ['keepstore/volumes/hashing-stream.js'], tests: ['keepstore/volumes/hashing-stream.test.js', 'keepstore/volumes/memory-volume.test.js'] },
  // The 100 000-item test checks scale, not logic (11 s here): left out of mutant runs.
  worklist: { files: ['keepstore/worklist.js'], tests: ['keepstore/worklist.test.js'], grep: '^(?!.*100 000)' },
  'trash-worker': { files: ['keepstore/trash-worker.js'], tests: ['keepstore/trash.test.js'] },
  'pull-worker': { files: ['keepstore/pull-worker.js'], tests: ['keepstore/pull-worker.test.js', 'keepstore/pull.test.js'] },
  // balance-pass.js (the streaming pipeline around balanceBlock) is left out: run.test covers it end to end, 10 s a run.
  balance: { files: ['datamanager/balance.js'], tests: ['datamanager/balance.test.js'] },
  sanity: { files: ['datamanager/sanity.js'], tests: ['datamanager/sanity.test.js'] },
  'directory-volume': {
    files: ['keepstore/volumes/directory-volume.js'],
    // The fsync order through the volume's fs seam, and non-regular files planted as blocks.
    tests: ['keepstore/volumes/directory-volume.test.js', 'keepstore/volumes/durability-order.test.js', 'keepstore/volumes/non-regular.test.js'],
  },
}

const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(name)
  if (i < 0) return fallback
  const v = args[i + 1]
  args.splice(i, 2)
  return v
}
const jsonOut = opt('--json', undefined)
// Rerun only the survivors of an earlier --json run (same compiled code): a quick check after adding tests.
const onlyFile = opt('--only-survivors-of', undefined)
const previous = onlyFile ? JSON.parse(readFileSync(onlyFile, 'utf8')) : undefined
const maxMinutes = Number(opt('--max-minutes', '30'))
const timeoutFactor = Number(opt('--timeout-factor', '3'))
const listOnly = args.includes('--list')
const countOnly = args.includes('--count')
const names = args.filter((a) => !a.startsWith('--'))
for (const n of names) if (!MODULES[n]) throw new Error(`unknown module ${n}; known: ${Object.keys(MODULES).join(', ')}`)
const selected = names.length ? names : Object.keys(MODULES)

if (listOnly) {
  for (const n of selected) console.log(`${n}: ${MODULES[n].files.join(', ')} ← ${MODULES[n].tests.join(', ')}`)
  process.exit(0)
}

const dist = path.join(repo, 'dist')
if (!existsSync(dist)) throw new Error('dist/ is missing: run `npm run build` first')
// A private copy at the same depth as dist/, so tests' relative paths (fixtures, bin/) still resolve.
const work = path.join(repo, `.mutate-dist-${process.pid}`)
rmSync(work, { recursive: true, force: true })
cpSync(dist, work, { recursive: true })
const cleanup = () => rmSync(work, { recursive: true, force: true })
process.on('SIGINT', () => {
  cleanup()
  process.exit(130)
})

// ---------------------------------------------------------------- mutants

const SWAP = {
  [ts.SyntaxKind.EqualsEqualsEqualsToken]: ['!=='],
  [ts.SyntaxKind.ExclamationEqualsEqualsToken]: ['==='],
  [ts.SyntaxKind.EqualsEqualsToken]: ['!='],
  [ts.SyntaxKind.ExclamationEqualsToken]: ['=='],
  [ts.SyntaxKind.LessThanToken]: ['<=', '>='],
  [ts.SyntaxKind.LessThanEqualsToken]: ['<', '>'],
  [ts.SyntaxKind.GreaterThanToken]: ['>=', '<='],
  [ts.SyntaxKind.GreaterThanEqualsToken]: ['>', '<'],
  [ts.SyntaxKind.AmpersandAmpersandToken]: ['||'],
  [ts.SyntaxKind.BarBarToken]: ['&&'],
  [ts.SyntaxKind.QuestionQuestionToken]: ['&&'],
  [ts.SyntaxKind.PlusToken]: ['-'],
  [ts.SyntaxKind.MinusToken]: ['+'],
  [ts.SyntaxKind.AsteriskToken]: ['/'],
  [ts.SyntaxKind.SlashToken]: ['*'],
  [ts.SyntaxKind.PlusEqualsToken]: ['-='],
  [ts.SyntaxKind.MinusEqualsToken]: ['+='],
}
const METHOD_SWAP = { some: 'every', every: 'some', startsWith: 'endsWith', endsWith: 'startsWith', min: 'max', max: 'min', shift: 'pop', pop: 'shift' }

/** Every mutant of one file: { start, end, replacement, kind }. */
function mutantsOf(source, file) {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS)
  const out = []
  const add = (node, replacement, kind, start = node.getStart(sf), end = node.getEnd()) => out.push({ start, end, replacement, kind })
  const visit = (node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) return
    if (ts.isBinaryExpression(node) && SWAP[node.operatorToken.kind]) {
      const stringy = (e) => ts.isStringLiteral(e) || ts.isTemplateExpression(e) || ts.isNoSubstitutionTemplateLiteral(e)
      const isPlus = node.operatorToken.kind === ts.SyntaxKind.PlusToken
      if (!(isPlus && (stringy(node.left) || stringy(node.right)))) {
        for (const r of SWAP[node.operatorToken.kind]) add(node.operatorToken, r, `${node.operatorToken.getText(sf)} → ${r}`)
      }
    }
    if (ts.isPrefixUnaryExpression(node) && node.operator === ts.SyntaxKind.ExclamationToken) {
      add(node, node.operand.getText(sf), 'drop !')
    }
    if (ts.isPrefixUnaryExpression(node) && node.operator === ts.SyntaxKind.MinusToken && ts.isNumericLiteral(node.operand)) {
      add(node, node.operand.getText(sf), 'drop unary -')
    }
    if (node.kind === ts.SyntaxKind.TrueKeyword) add(node, 'false', 'true → false')
    if (node.kind === ts.SyntaxKind.FalseKeyword) add(node, 'true', 'false → true')
    if (ts.isNumericLiteral(node)) {
      const v = Number(node.text)
      if (Number.isFinite(v)) {
        add(node, String(v + 1), `${node.getText(sf)} → ${v + 1}`)
        if (v !== 0) add(node, String(v - 1), `${node.getText(sf)} → ${v - 1}`)
      }
    }
    if (ts.isBigIntLiteral(node)) {
      const v = BigInt(node.text.replace(/_/g, '').slice(0, -1))
      add(node, `${v + 1n}n`, `${node.getText(sf)} → ${v + 1n}n`)
      if (v !== 0n) add(node, `${v - 1n}n`, `${node.getText(sf)} → ${v - 1n}n`)
    }
    if (ts.isPropertyAccessExpression(node) && METHOD_SWAP[node.name.text] && node.parent && ts.isCallExpression(node.parent) && node.parent.expression === node) {
      add(node.name, METHOD_SWAP[node.name.text], `.${node.name.text} → .${METHOD_SWAP[node.name.text]}`)
    }
    if (ts.isIfStatement(node)) {
      add(node.expression, 'true', 'if (…) → if (true)')
      add(node.expression, 'false', 'if (…) → if (false)')
    }
    if (ts.isExpressionStatement(node)) {
      let e = node.expression
      if (ts.isAwaitExpression(e) || ts.isVoidExpression(e)) e = e.expression
      if (ts.isCallExpression(e)) add(node, ';', 'remove call statement')
      else if (ts.isBinaryExpression(e) && e.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && e.operatorToken.kind <= ts.SyntaxKind.LastAssignment && !ts.isIdentifier(e.left)) {
        add(node, ';', 'remove property assignment')
      }
    }
    if (ts.isThrowStatement(node)) add(node, ';', 'remove throw')
    ts.forEachChild(node, visit)
  }
  visit(sf)
  // The TypeScript source line for each mutant, from the source map tsc wrote.
  const lineOf = sourceLines(file, source)
  for (const m of out) {
    m.jsLine = sf.getLineAndCharacterOfPosition(m.start).line + 1
    m.line = lineOf(m.jsLine)
    m.original = source.slice(m.start, m.end)
  }
  return out
}

/** Maps a 1-based JS line to `file.ts:line` with the source map's mappings (first segment of the line). */
function sourceLines(file, source) {
  const mapFile = `${file}.map`
  if (!existsSync(mapFile)) return (l) => `${path.relative(repo, file)}:${l}`
  const map = JSON.parse(readFileSync(mapFile, 'utf8'))
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  const decode = (s) => {
    const out = []
    let value = 0
    let shift = 0
    for (const ch of s) {
      const d = B64.indexOf(ch)
      value += (d & 31) << shift
      if (d & 32) shift += 5
      else {
        out.push(value & 1 ? -(value >> 1) : value >> 1)
        value = 0
        shift = 0
      }
    }
    return out
  }
  const lines = []
  let srcLine = 0
  for (const group of map.mappings.split(';')) {
    let first
    for (const seg of group.split(',').filter(Boolean)) {
      const f = decode(seg)
      if (f.length >= 3) {
        srcLine += f[2]
        first ??= srcLine
      }
    }
    lines.push(first)
  }
  const tsFile = path.relative(repo, path.resolve(path.dirname(file), map.sources[0]))
  void source
  return (l) => `${tsFile}:${(lines[l - 1] ?? 0) + 1}`
}

// ---------------------------------------------------------------- running

if (countOnly) {
  for (const n of selected) {
    const all = MODULES[n].files.flatMap((f) => mutantsOf(readFileSync(path.join(work, f), 'utf8'), path.join(work, f)))
    console.log(`${n}: ${all.length} mutants`)
  }
  cleanup()
  process.exit(0)
}

function runTests(tests, timeoutMs, grep) {
  return new Promise((resolve) => {
    const started = Date.now()
    let pending = tests.length
    let failed = false
    let timedOut = false
    const children = []
    const finish = () => {
      clearTimeout(timer)
      resolve({ failed, timedOut, ms: Date.now() - started })
    }
    const timer = setTimeout(() => {
      timedOut = true
      failed = true
      for (const c of children) c.kill('SIGKILL')
    }, timeoutMs)
    for (const test of tests) {
      // One file = one process; tap's own runner is not needed to get an exit code. TAP_BAIL stops at the first failure.
      const child = spawn(process.execPath, [path.join(work, 'test', test)], {
        cwd: repo,
        stdio: 'ignore',
        env: { ...process.env, TAP_BAIL: '1', NODE_OPTIONS: '', ...(grep ? { TAP_GREP: grep } : {}) },
        detached: true,
      })
      children.push(child)
      child.on('exit', (code, signal) => {
        if (code !== 0 || signal) {
          if (!failed) {
            failed = true
            for (const c of children) {
              if (c === child || c.exitCode !== null) continue
              // It may have exited with its 'exit' event still queued: nothing left to kill then.
              try {
                process.kill(-c.pid, 'SIGKILL')
              } catch (err) {
                if (err.code !== 'ESRCH') throw err
              }
            }
          }
        }
        if (--pending === 0) finish()
      })
    }
  })
}

const deadline = Date.now() + maxMinutes * 60_000
const results = {}
const t0 = Date.now()
try {
  for (const name of selected) {
    const mod = MODULES[name]
    const baseline = await runTests(mod.tests, 600_000, mod.grep)
    if (baseline.failed) {
      console.log(`${name}: the scoped tests fail without any mutant; skipped (${mod.tests.join(', ')})`)
      results[name] = { error: 'baseline failed' }
      continue
    }
    const timeoutMs = Math.max(5_000, baseline.ms * timeoutFactor)
    const r = (results[name] = { killed: 0, survived: 0, timedOut: 0, notRun: 0, survivors: [] })
    const all = []
    for (const file of mod.files) {
      const abs = path.join(work, file)
      const source = readFileSync(abs, 'utf8')
      for (const m of mutantsOf(source, abs)) all.push({ ...m, abs, source })
    }
    if (previous) {
      const keys = new Set((previous[name]?.survivors ?? []).map((x) => `${x.js}|${x.kind}|${x.replacement}`))
      const kept = all.filter((m) => keys.has(`${path.relative(work, m.abs)}:${m.jsLine}|${m.kind}|${m.replacement}`))
      console.log(`${name}: only the ${kept.length} survivors of ${onlyFile} (of ${all.length} mutants)`)
      all.splice(0, all.length, ...kept)
    }
    console.log(`${name}: ${all.length} mutants, baseline ${(baseline.ms / 1000).toFixed(1)} s, timeout ${(timeoutMs / 1000).toFixed(1)} s`)
    let i = 0
    for (const m of all) {
      i++
      if (Date.now() > deadline) {
        r.notRun++
        continue
      }
      writeFileSync(m.abs, m.source.slice(0, m.start) + m.replacement + m.source.slice(m.end))
      let outcome
      try {
        outcome = await runTests(mod.tests, timeoutMs, mod.grep)
      } finally {
        writeFileSync(m.abs, m.source)
      }
      if (outcome.failed) {
        r.killed++
        if (outcome.timedOut) r.timedOut++
      } else {
        r.survived++
        const js = `${path.relative(work, m.abs)}:${m.jsLine}`
        r.survivors.push({ line: m.line, js, kind: m.kind, original: m.original.split('\n')[0].slice(0, 100), replacement: m.replacement })
        console.log(`  survived ${m.line} (dist/${js})  ${m.kind}: ${m.original.split('\n')[0].slice(0, 80)}`)
      }
      if (i % 10 === 0 || i === all.length) {
        const mins = ((Date.now() - t0) / 60_000).toFixed(1)
        console.log(`  ${name}: ${i}/${all.length} done, ${r.killed} killed, ${r.survived} survived (${mins} min)`)
      }
    }
    const run = r.killed + r.survived
    r.score = run ? Math.round((1000 * r.killed) / run) / 10 : 0
    console.log(`${name}: ${r.killed}/${run} killed (${r.score} %)${r.notRun ? `, ${r.notRun} not run (time bound)` : ''}`)
  }
} finally {
  cleanup()
}
console.log('\nmodule            killed  survived  score')
for (const [name, r] of Object.entries(results)) {
  if (r.error) console.log(`${name.padEnd(18)}${r.error}`)
  else console.log(`${name.padEnd(18)}${String(r.killed).padStart(6)}  ${String(r.survived).padStart(8)}  ${r.score} %${r.notRun ? ` (${r.notRun} not run)` : ''}`)
}
console.log(`total ${((Date.now() - t0) / 60_000).toFixed(1)} min`)
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(results, null, 2))
