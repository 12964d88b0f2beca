/** Progress of a transfer: bytes done of a total (0 when unknown, e.g. stdin). */
export interface Progress {
  add(bytes: number): void
  /** A larger total (another file's size became known). */
  grow(bytes: number): void
  stop(): void
}

const MiB = 1024 * 1024

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`
}

const silent: Progress = { add: () => undefined, grow: () => undefined, stop: () => undefined }

/**
 * A cli-progress bar on stderr with bytes, bytes/s and ETA, when `show` (a
 * TTY, or `--progress`); otherwise nothing at all. cli-progress is loaded
 * only then, so quiet runs do not pay for it.
 */
export async function createProgress(
  show: boolean,
  label: string,
  total: number,
  options: { stream?: NodeJS.WriteStream | NodeJS.WritableStream; now?: () => number } = {},
): Promise<Progress> {
  if (!show) return silent
  const { default: cliProgress } = await import('cli-progress')
  const stream = (options.stream ?? process.stderr) as NodeJS.WriteStream
  const now = options.now ?? Date.now
  const bar = new cliProgress.SingleBar({
    stream,
    format: `${label} {bar} {percentage}% | {done} of {all} | {rate} | ETA {eta_formatted}`,
    barsize: 30,
    fps: 5,
    etaBuffer: 50,
    hideCursor: stream.isTTY === true,
    noTTYOutput: stream.isTTY !== true,
    notTTYSchedule: 1000,
  })
  const started = now()
  let done = 0
  let all = total
  const payload = (): Record<string, string> => {
    const seconds = Math.max((now() - started) / 1000, 0.001)
    return { done: humanBytes(done), all: all > 0 ? humanBytes(all) : '?', rate: `${(done / MiB / seconds).toFixed(1)} MiB/s` }
  }
  bar.start(Math.max(all, 1), 0, payload())
  return {
    add(bytes) {
      done += bytes
      bar.update(Math.min(done, Math.max(all, 1)), payload())
    },
    grow(bytes) {
      all += bytes
      bar.setTotal(Math.max(all, 1))
    },
    stop() {
      bar.update(Math.min(done, Math.max(all, 1)), payload())
      bar.stop()
    },
  }
}
