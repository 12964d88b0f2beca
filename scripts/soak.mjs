#!/usr/bin/env node
// `npm run soak [-- --kills N --cases N …]`: the reliability suite (test/reliability/)
// at its long counts. Each `--name N` flag becomes KEEP_SOAK_<NAME>=N for the tests
// (see test/helpers/soak.ts); figures are collected in bench/results/soak-<time>.jsonl
// and printed as a table at the end. Extra non-flag arguments select test files.
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, existsSync } from 'node:fs'
import path from 'node:path'

const env = { ...process.env, KEEP_SOAK: '1' }
const files = []
const args = process.argv.slice(2)
for (let i = 0; i < args.length; i++) {
  const flag = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(args[i])
  if (!flag) {
    files.push(args[i])
    continue
  }
  const value = flag[2] ?? args[++i]
  if (value === undefined || !/^\d+$/.test(value)) {
    console.error(`soak: --${flag[1]} needs a whole number`)
    process.exit(2)
  }
  env[`KEEP_SOAK_${flag[1].toUpperCase().replace(/-/g, '_')}`] = value
}
mkdirSync('bench/results', { recursive: true })
const figures = path.resolve(`bench/results/soak-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`)
env.KEEP_FIGURES = figures
const targets = files.length ? files : ['dist/test/reliability/']
const child = spawn(process.execPath, ['scripts/run-tests.mjs', '--timeout=14400', '--jobs=1', ...targets], { stdio: 'inherit', env })
child.on('close', (code) => {
  if (existsSync(figures)) {
    console.log(`\nfigures (${figures}):`)
    for (const line of readFileSync(figures, 'utf8').split('\n').filter(Boolean)) {
      const { name, at, soak, ...values } = JSON.parse(line)
      console.log(`  ${name}: ${Object.entries(values).map(([k, v]) => `${k}=${v}`).join(' ')}`)
    }
  }
  process.exit(code ?? 1)
})
