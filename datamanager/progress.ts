import cliProgress from 'cli-progress'

/** A progress line for long runs; the default does nothing (logs and tests). */
export interface Progress {
  /** Starts (or switches to) a phase counting up to `total`. */
  phase(name: string, total: number): void
  update(value: number, detail: string): void
  stop(): void
}

export const noProgress: Progress = { phase() {}, update() {}, stop() {} }

/** A cli-progress bar on stderr; only worth it when `process.stderr.isTTY`. */
export function createTtyProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: 'datamanager {phase} |{bar}| {percentage}% {detail}',
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  )
  let running = false
  let phase = ''
  return {
    phase(name, total) {
      phase = name
      if (running) bar.setTotal(Math.max(1, total))
      else bar.start(Math.max(1, total), 0, { phase, detail: '' })
      bar.update(0, { phase, detail: '' })
      running = true
    },
    update(value, detail) {
      if (running) bar.update(value, { phase, detail })
    },
    stop() {
      if (running) bar.stop()
      running = false
    },
  }
}

/** Selects the bar only for a terminal. */
export function progressFor(stream: NodeJS.WriteStream = process.stderr): Progress {
  return stream.isTTY ? createTtyProgress(stream) : noProgress
}
