import { setTimeout as delay } from 'node:timers/promises'
import { isKeepError } from '../shared/errors.js'
import type { Logger } from '../shared/logger.js'
import type { KeepstoreMetrics } from './metrics.js'
import type { Mount } from './mount.js'
import { readBuffers } from './volumes/buffer-pool.js'

/** Time as the scrubber sees it: injected, so tests neither wait nor depend on the wall clock. */
export interface ScrubClock {
  /** Milliseconds since the epoch. */
  now(): number
  /** Resolves after `ms`; rejects with an AbortError when `signal` aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const systemClock: ScrubClock = {
  now: Date.now,
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : {}),
}

/** One megabyte as scrubRate counts it (10^6 bytes, as disks are sold). */
export const MB = 1_000_000

/**
 * Paces reads to `bytesPerSecond`: each take() reserves the time its bytes
 * cost, right after the previous reservation, and waits until that slot
 * begins. So by any instant T the bytes taken are at most rate × (T − start)
 * plus the last take; idle time is not saved up into a burst. A rate of 0
 * (or Infinity) never waits.
 */
export class RateLimiter {
  private nextFree: number | undefined

  constructor(
    private readonly bytesPerSecond: number,
    private readonly clock: ScrubClock,
  ) {}

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (!(this.bytesPerSecond > 0) || !Number.isFinite(this.bytesPerSecond)) return
    const now = this.clock.now()
    const start = this.nextFree === undefined || this.nextFree < now ? now : this.nextFree
    this.nextFree = start + (bytes / this.bytesPerSecond) * 1000
    if (start > now) await this.clock.sleep(start - now, signal)
  }
}

export interface ScrubCounts {
  blocks_checked: number
  bytes_read: number
  /** Copies that failed their hash or were not regular files (found by the scan, confirmed or not under the lock). */
  corrupt_found: number
  quarantined: number
  /** Blocks that could not be read or quarantined (I/O errors, read-only volumes). */
  errors: number
}

export interface ScrubReport extends ScrubCounts {
  started_at: string
  finished_at: string
  volumes: number
  /** False when the pass was stopped or a volume could not be walked to the end. */
  complete: boolean
}

export interface ScrubStatus {
  rate_mb_per_s: number
  running: boolean
  passes: number
  last_run: ScrubReport | null
  current: (ScrubCounts & { started_at: string }) | null
}

export interface ScrubberOptions {
  mounts: () => readonly Mount[]
  /** MB/s the scrubber may read; 0 = no periodic scrub, and scrubOnce() reads unpaced. */
  rateMBps: number
  logger: Logger
  metrics?: KeepstoreMetrics
  clock?: ScrubClock
  /** From the start of one pass to the start of the next (default 24 h; at once when a pass took longer). */
  intervalMs?: number
  /** Before the first periodic pass (default 1 min: let start-up traffic settle). */
  initialDelayMs?: number
  /** Test seam: awaited after a bad copy is found, before quarantine takes the lock and re-checks it. */
  beforeQuarantine?: (mountUuid: string, hash: string) => Promise<void>
}

type Counted = keyof ScrubCounts

/**
 * Finds bit rot before a reader does: walks every volume, reads each block
 * through the volume's verifying read at no more than the configured rate,
 * and quarantines copies that fail their hash or are not regular files. The
 * volume re-checks each one under its per-hash lock, so a good copy written
 * meanwhile (PUT, pull) is never moved; good blocks are only read. A
 * quarantined copy is missing from the index, so the datamanager sees one
 * replica fewer and pulls a good one.
 */
export class Scrubber {
  private readonly clock: ScrubClock
  private readonly stopping = new AbortController()
  private passes = 0
  private last: ScrubReport | undefined
  private current: (ScrubCounts & { started_at: string }) | undefined
  private running: Promise<ScrubReport> | undefined
  private loop: Promise<void> | undefined

  constructor(private readonly options: ScrubberOptions) {
    this.clock = options.clock ?? systemClock
  }

  /** One full pass over every volume now (joins the pass already running, if any). */
  scrubOnce(): Promise<ScrubReport> {
    this.running ??= this.pass().finally(() => (this.running = undefined))
    return this.running
  }

  /** Periodic passes, when a rate is configured. */
  start(): void {
    if (this.options.rateMBps <= 0 || this.loop) return
    this.loop = this.periodic().catch((err: unknown) => {
      if (!this.stopping.signal.aborted) this.options.logger.error({ err }, 'scrubber stopped')
    })
  }

  /** Stops the periodic passes and the pass in progress (its report says `complete: false`). */
  async stop(): Promise<void> {
    this.stopping.abort()
    await this.loop
    await this.running?.catch(() => undefined)
  }

  status(): ScrubStatus {
    return {
      rate_mb_per_s: this.options.rateMBps,
      running: this.current !== undefined,
      passes: this.passes,
      last_run: this.last ?? null,
      current: this.current ? { ...this.current } : null,
    }
  }

  private async periodic(): Promise<void> {
    const signal = this.stopping.signal
    await this.clock.sleep(this.options.initialDelayMs ?? 60_000, signal)
    for (;;) {
      const started = this.clock.now()
      await this.scrubOnce().catch((err: unknown) => {
        if (!signal.aborted) this.options.logger.error({ err }, 'scrub pass failed')
      })
      signal.throwIfAborted()
      const wait = started + (this.options.intervalMs ?? 24 * 3600_000) - this.clock.now()
      await this.clock.sleep(Math.max(0, wait), signal)
    }
  }

  private async pass(): Promise<ScrubReport> {
    const signal = this.stopping.signal
    const limiter = new RateLimiter(this.options.rateMBps * MB, this.clock)
    const counts = { started_at: new Date(this.clock.now()).toISOString(), blocks_checked: 0, bytes_read: 0, corrupt_found: 0, quarantined: 0, errors: 0 }
    this.current = counts
    const mounts = this.options.mounts()
    let complete = true
    let report: ScrubReport | undefined
    try {
      for (const mount of mounts) {
        try {
          await this.scrubMount(mount, counts, limiter, signal)
        } catch (err) {
          signal.throwIfAborted()
          complete = false
          this.add(counts, mount, 'errors')
          this.options.logger.error({ err, mount: mount.uuid }, 'scrub could not walk the volume')
        }
      }
    } catch (err) {
      complete = false
      throw err
    } finally {
      const { started_at, ...rest } = counts
      report = { started_at, finished_at: new Date(this.clock.now()).toISOString(), volumes: mounts.length, complete, ...rest }
      this.current = undefined
      this.last = report
      this.passes++
      if (complete) this.options.metrics?.scrubLastRun.set(this.clock.now() / 1000)
      this.options.logger.info({ scrub: report }, 'scrub pass finished')
    }
    return report
  }

  private async scrubMount(mount: Mount, counts: ScrubCounts, limiter: RateLimiter, signal: AbortSignal): Promise<void> {
    // First what the index cannot list (nothing is opened); then every listed block, read and verified.
    for await (const hash of mount.volume.irregular('', { signal })) {
      this.add(counts, mount, 'blocks_checked')
      await this.handleBad(mount, hash, 'not a regular file', true, counts)
    }
    for await (const entry of mount.volume.index('', { signal })) {
      this.add(counts, mount, 'blocks_checked')
      const problem = await this.verify(mount, entry.hash, counts, limiter, signal)
      if (problem) await this.handleBad(mount, entry.hash, problem.reason, problem.certain, counts)
    }
  }

  /** Reads one block through the verifying stream; undefined when it is good or gone. */
  private async verify(
    mount: Mount,
    hash: string,
    counts: ScrubCounts,
    limiter: RateLimiter,
    signal: AbortSignal,
  ): Promise<{ reason: string; certain: boolean } | undefined> {
    let stream
    try {
      stream = (await mount.volume.read(hash, { signal })).stream
    } catch (err) {
      signal.throwIfAborted()
      return isKeepError(err, 'KEEP_BLOCK_NOT_FOUND') ? undefined : this.readProblem(mount, err)
    }
    try {
      for await (const chunk of stream) {
        const n = (chunk as Buffer).length
        readBuffers.give(chunk as Buffer) // hashed by the stream, read by nobody else
        await limiter.take(n, signal)
        this.add(counts, mount, 'bytes_read', n)
      }
      return undefined
    } catch (err) {
      stream.destroy()
      signal.throwIfAborted()
      return this.readProblem(mount, err)
    }
  }

  /** A hash failure is certain; any other read failure is only a suspicion the re-check settles. */
  private readProblem(mount: Mount, err: unknown): { reason: string; certain: boolean } {
    if (isKeepError(err, 'KEEP_CORRUPT')) {
      mount.recordCorrupt()
      return { reason: 'fails its hash', certain: true }
    }
    mount.recordError(err)
    return { reason: `read failed (${isKeepError(err) ? err.code : String(err)})`, certain: false }
  }

  private async handleBad(mount: Mount, hash: string, reason: string, certain: boolean, counts: ScrubCounts): Promise<void> {
    const log = this.options.logger
    if (certain) this.add(counts, mount, 'corrupt_found')
    try {
      await this.options.beforeQuarantine?.(mount.uuid, hash)
      const outcome = await mount.volume.quarantine(hash)
      if (outcome === 'quarantined') {
        if (!certain) this.add(counts, mount, 'corrupt_found')
        this.add(counts, mount, 'quarantined')
        log.warn({ audit: 'quarantine', hash, mount: mount.uuid, reason }, 'corrupt block quarantined')
      } else if (certain) {
        log.info({ hash, mount: mount.uuid, outcome }, 'corrupt block was replaced or removed before quarantine')
      } else {
        this.add(counts, mount, 'errors')
        log.warn({ hash, mount: mount.uuid, reason, outcome }, 'block could not be read but re-checked fine')
      }
    } catch (err) {
      this.add(counts, mount, 'errors')
      log.error({ err, hash, mount: mount.uuid, reason }, 'corrupt block could not be quarantined')
    }
  }

  private add(counts: ScrubCounts, mount: Mount, what: Counted, n = 1): void {
    counts[what] += n
    const m = this.options.metrics
    if (!m) return
    const counter = { blocks_checked: m.scrubBlocks, bytes_read: m.scrubBytes, corrupt_found: m.scrubCorrupt, quarantined: m.scrubQuarantined, errors: m.scrubErrors }[what]
    counter.inc({ volume: mount.uuid }, n)
  }
}
