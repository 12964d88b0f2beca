import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

// Compiled to dist/test/helpers/: the repository root is three levels up.
export const KEEP_BIN = fileURLToPath(new URL('../../../bin/keep', import.meta.url))
/** Liveness only: a `keep` run that has not ended by then is stuck, not slow. */
const DEADLINE_MS = 60_000

export interface KeepRun {
  code: number | null
  /** The signal that ended the child, if one did. */
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface KeepRunOptions {
  /** Written to the child's stdin, then closed (default: stdin is empty). */
  input?: string | Buffer
  /** stdout goes to this file instead of being collected (large outputs). */
  stdoutFile?: string
  /** Added to the environment; KEEP_CONFIG and KEEP_TOKEN are removed unless given here. */
  env?: Record<string, string>
  cwd?: string
  /**
   * Runs the child under `ulimit -f` (KiB) with SIGXFSZ ignored, as Node itself
   * does (so a write past the limit fails with EFBIG). NODE_OPTIONS is unset
   * for it: tap's coverage hooks in it would re-raise the signal and kill the child.
   */
  fileSizeLimitKiB?: number
}

/** Runs `bin/keep ARGS` as a child process, the way a person or script does. */
export function runKeep(args: string[], options: KeepRunOptions = {}): Promise<KeepRun> {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.KEEP_CONFIG
  delete env.KEEP_TOKEN
  Object.assign(env, options.env)
  const out = options.stdoutFile === undefined ? 'pipe' : openSync(options.stdoutFile, 'w')
  const spawnOptions: SpawnOptions = { stdio: ['pipe', out, 'pipe'], env, ...(options.cwd ? { cwd: options.cwd } : {}) }
  let command = [process.execPath, KEEP_BIN, ...args]
  // KEEP_TIME_CLI=FILE (by hand, when measuring): each run's CPU and wall seconds are appended to FILE.
  const timeFile = process.env.KEEP_TIME_CLI
  if (timeFile) command = ['/usr/bin/time', '-a', '-o', timeFile, '-f', `%U+%S %e ${args[2] ?? args[0]}`, ...command]
  if (options.fileSizeLimitKiB !== undefined) {
    delete env.NODE_OPTIONS
    command = ['/bin/bash', '-c', `ulimit -f ${options.fileSizeLimitKiB} && trap '' XFSZ && exec "$@"`, 'bash', ...command]
  }
  const child: ChildProcess = spawn(command[0]!, command.slice(1), spawnOptions)
  if (typeof out === 'number') closeSync(out)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  child.stdin!.on('error', () => undefined) // the child may exit without reading it
  child.stdin!.end(options.input ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS)
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** Writes a config document (JSON, which is YAML) for `keep --config`; returns its path. */
export function writeConfigFile(dir: string, doc: unknown, name = 'cluster.json'): string {
  const file = path.join(dir, name)
  writeFileSync(file, JSON.stringify(doc))
  return file
}

/**
 * Writes a file of `size` bytes without holding it in memory: a hole (zeros)
 * with a 16-byte label every MiB, so every block of every file made with
 * another `seed` (0–9) is distinct, while the disk and the test pay for a
 * few pages only.
 */
export function writeSparseFile(file: string, size: number, seed: number): void {
  const fd = openSync(file, 'w')
  try {
    const label = Buffer.alloc(16)
    for (let at = 0; at < size; at += 1 << 20) {
      // The seed comes first: even a 1-byte file or tail differs from another seed's.
      label.fill(0).write(`${seed}:${at >>> 20}:keep`, 'latin1')
      writeSync(fd, label, 0, Math.min(16, size - at), at)
    }
    ftruncateSync(fd, size)
  } finally {
    closeSync(fd)
  }
}

/** Whether two files hold the same bytes (read 1 MiB at a time, never whole). */
export function sameBytes(a: string, b: string): boolean {
  const fa = openSync(a, 'r')
  const fb = openSync(b, 'r')
  try {
    if (fstatSync(fa).size !== fstatSync(fb).size) return false
    const x = Buffer.alloc(1 << 20)
    const y = Buffer.alloc(1 << 20)
    for (;;) {
      const n = readSync(fa, x, 0, x.length, null)
      const m = readSync(fb, y, 0, y.length, null)
      if (n !== m || !x.subarray(0, n).equals(y.subarray(0, m))) return false
      if (n === 0) return true
    }
  } finally {
    closeSync(fa)
    closeSync(fb)
  }
}
