#!/usr/bin/env node
// npm's pretest: removes compiled files in dist/ whose TypeScript source is gone
// (so a deleted test can never run from a stale .js), then tsc rebuilds
// incrementally (dist/.tsbuildinfo): a clean clone, which `npm ci` already
// compiled, is not compiled a second time.
import { existsSync, readdirSync, rmSync } from 'node:fs'
import path from 'node:path'

function walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name)
    if (entry.isDirectory()) walk(file)
    else {
      const source = /^dist\/(.*)\.js(?:\.map)?$/.exec(file)?.[1]
      if (source !== undefined && !existsSync(`${source}.ts`)) rmSync(file)
    }
  }
}

/** Whether every compiled source (tsconfig's `include`) has its .js in dist/. */
function complete(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name)
    if (entry.isDirectory()) {
      if (!complete(file)) return false
    } else if (file.endsWith('.ts') && !file.endsWith('.d.ts') && !existsSync(`dist/${file.slice(0, -3)}.js`)) return false
  }
  return true
}

const SOURCES = ['bin', 'shared', 'client', 'keepstore', 'datamanager', 'scripts', 'bench', 'test']

if (existsSync('dist')) {
  // With build info but a missing output tsc would wrongly skip it: start over then.
  if (!existsSync('dist/.tsbuildinfo') || !SOURCES.filter((d) => existsSync(d)).every(complete)) {
    rmSync('dist', { recursive: true, force: true })
  } else walk('dist')
}
