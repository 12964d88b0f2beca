import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, readdirSync } from 'node:fs'

/** The system calls a block write goes through, plus the socket writes of the response. */
export const TRACED = 'openat,write,writev,pwrite64,pwritev,fsync,fdatasync,rename,renameat,renameat2,mkdir,mkdirat,unlink,unlinkat'

/** Why strace cannot be used here (one line), or undefined when it can. */
export function straceUnusable(): string | undefined {
  const r = spawnSync('strace', ['-f', '-o', '/dev/null', 'true'], { encoding: 'utf8' })
  if (r.error) return `needs strace: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed' : r.error.message}`
  if (r.status !== 0) return `needs ptrace: strace cannot trace here (${(r.stderr || '').trim().split('\n')[0] ?? r.status})`
  return undefined
}

export interface Syscall {
  tid: number
  name: string
  args: string
  result: string
  /** Line (0-based) where the call began and where its result was printed: equal unless it was interrupted by another thread's line. */
  start: number
  end: number
  injected: boolean
}

const LINE = /^(\d+) +[\d.]+ (.*)$/

/** Parses `strace -f -ttt` output, joining `<unfinished ...>` / `<... resumed>` halves. */
export function parseStrace(file: string): Syscall[] {
  const calls: Syscall[] = []
  const pending = new Map<number, Syscall>()
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, n) => {
      const m = LINE.exec(line)
      if (!m) return
      const tid = Number(m[1])
      const rest = m[2]!
      const resumed = /^<\.\.\. (\w+) resumed>(.*)\) += (.*)$/.exec(rest)
      if (resumed) {
        const call = pending.get(tid)
        if (!call) return
        pending.delete(tid)
        call.args += resumed[2]
        call.result = resumed[3]!
        call.end = n
        call.injected = call.result.includes('(INJECTED)')
        return
      }
      const unfinished = /^(\w+)\((.*) <unfinished \.\.\.>$/.exec(rest)
      if (unfinished) {
        const call: Syscall = { tid, name: unfinished[1]!, args: unfinished[2]!, result: '', start: n, end: n, injected: false }
        pending.set(tid, call)
        calls.push(call)
        return
      }
      const done = /^(\w+)\((.*)\) += (.*)$/.exec(rest)
      if (done) calls.push({ tid, name: done[1]!, args: done[2]!, result: done[3]!, start: n, end: n, injected: done[3]!.includes('(INJECTED)') })
    })
  return calls
}

/** The path strace showed for the call's first argument when it is a descriptor (`12</a/b>`). */
export function fdPath(call: Syscall): string | undefined {
  return /^\d+<([^>]*)>/.exec(call.args)?.[1]
}

/** The path a call returned as a descriptor (`= 12</a/b>`). */
export function resultPath(call: Syscall): string | undefined {
  return /^\d+<([^>]*)>/.exec(call.result)?.[1]
}

/** The quoted path arguments of a call (openat's file, rename's two paths, mkdir's directory). */
export function pathArgs(call: Syscall): string[] {
  return [...call.args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!)
}

export const isWrite = (c: Syscall): boolean => /^(write|writev|pwrite64|pwritev)$/.test(c.name)
export const isRename = (c: Syscall): boolean => /^rename(at2?)?$/.test(c.name)
export const isSync = (c: Syscall): boolean => c.name === 'fsync' || c.name === 'fdatasync'

export interface AttachedStrace {
  /** Detaches (strace exits on SIGTERM, leaving the process running) and waits until the trace file is complete. */
  detach(): Promise<void>
}

/**
 * Attaches strace to a running process: by default to every thread but the
 * main one (the event loop, which writes the HTTP answers). The file-system
 * calls of a Node process run on libuv's worker threads, so an injected fault
 * such as `inject=writev:error=EIO:when=1` (counted per thread) hits the first
 * such call after attaching, never a socket write. `allThreads` traces the
 * main thread too (`-f`). Resolves once strace reports every thread attached.
 */
export async function attachStrace(pid: number, output: string, options: { extra?: string[]; allThreads?: boolean } = {}): Promise<AttachedStrace> {
  const tids = readdirSync(`/proc/${pid}/task`).filter((tid) => options.allThreads || tid !== String(pid))
  const targets = options.allThreads ? ['-f', '-p', String(pid)] : tids.flatMap((tid) => ['-p', tid])
  const args = ['-yy', '-ttt', '-s', '512', '-e', `trace=${TRACED}`, ...(options.extra ?? []), '-o', output, ...targets]
  const child = spawn('strace', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const exited = once(child, 'close')
  let stderr = ''
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString()
      // `-f -p PID` says "Process PID attached with N threads"; each `-p TID` says "Process TID attached".
      if (options.allThreads ? /attached with \d+ threads/.test(stderr) : (stderr.match(/Process \d+ attached/g) ?? []).length >= tids.length) resolve()
    })
    void exited.then(() => reject(new Error(`strace exited before attaching: ${stderr.trim()}`)))
  })
  return {
    async detach() {
      child.kill('SIGTERM')
      await exited
    },
  }
}
