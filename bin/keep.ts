import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { isKeepError } from '../shared/errors.js'
import { parseDuration } from '../shared/duration.js'
import { EXIT_CODES_HELP, KEEP_EXIT, exitCodeOf } from '../client/exit-codes.js'
import type { ClientContext } from '../client/context.js'

// Modules a command needs are imported by that command: a `keep` run pays only for what it uses.

interface GlobalOptions {
  config?: string
  json: boolean
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`)
    return n
  }
}

function duration(value: string): number {
  try {
    return parseDuration(value)
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
}

function classList(value: string): string[] {
  const classes = value.split(',').map((c) => c.trim()).filter(Boolean)
  if (classes.length === 0) throw new InvalidArgumentError('give one or more class names, comma-separated')
  return [...new Set(classes)]
}

/** Runs a command with the cluster context; closes it however the command ends. */
async function withContext(command: Command, run: (ctx: ClientContext, global: GlobalOptions) => Promise<number | void>): Promise<void> {
  const global = command.optsWithGlobals<GlobalOptions>()
  const { createContext } = await import('../client/context.js')
  const ctx = await createContext({ config: global.config })
  try {
    const code = await run(ctx, global)
    if (typeof code === 'number') process.exitCode = code
  } finally {
    await ctx.close()
  }
}

const showProgress = (flag: boolean | undefined): boolean => flag ?? process.stderr.isTTY === true

function buildProgram(): Command {
  const program = new Command('keep')
    .description('Put and get files as Keep blocks; look after the keepstores of a cluster')
    .option('--config <file>', 'cluster config (default: $KEEP_CONFIG, else var/cluster.yml, as npm start writes it)')
    .option('--json', 'machine-readable output (admin commands)', false)
    .addHelpText(
      'after',
      `\nThe token is $KEEP_TOKEN, else the config's systemRootToken. GET locators are signed with the\nconfig's blobSigningKey when it is there, else sent as given (with their +A hint).\n\n${EXIT_CODES_HELP}\n`,
    )
    .showHelpAfterError('(keep --help for usage)')

  program
    .command('put')
    .description('store files (- = stdin) as 64 MiB blocks; print one manifest line per file')
    .argument('<files...>', 'files to store; - reads stdin')
    .option('--replicas <n>', 'replicas of each block (in each class); default: cluster.defaultReplication', integer(1, 100))
    .option('--storage-classes <list>', 'comma-separated classes, each getting --replicas replicas', classList)
    .option('--collection <file.jsonl>', 'append a collection record of the files to this .jsonl (for the datamanager)')
    .option('--filename <name>', 'name of the stdin data in the manifest', 'stdin')
    .option('--parallel <n>', 'blocks in memory at once, being read or uploaded (64 MiB each)', integer(1, 32), 3)
    .option('--retries <n>', 'further rounds over servers that were busy (503) or did not answer', integer(0, 10), 3)
    .option('--retry-delay <duration>', 'pause before the first retry round, doubled each round (default: 1s)', duration)
    .addOption(new Option('--progress', 'show a progress bar (default: when stderr is a terminal)'))
    .addOption(new Option('--no-progress', 'never show a progress bar'))
    .action(async (files: string[], opts: { replicas?: number; storageClasses?: string[]; collection?: string; filename: string; parallel: number; retries: number; retryDelay?: number; progress?: boolean }, command: Command) => {
      await withContext(command, async (ctx) => {
        const { putFiles } = await import('../client/put.js')
        const { appendCollection, collectionUuid } = await import('../client/collection.js')
        const lines = await putFiles(ctx, {
          files,
          replicas: opts.replicas ?? ctx.config.cluster.defaultReplication,
          classes: opts.storageClasses ?? [],
          retries: opts.retries,
          retryDelayMs: opts.retryDelay ?? 1000,
          parallel: opts.parallel,
          stdinName: opts.filename,
          progress: showProgress(opts.progress),
          out: process.stdout,
        })
        if (opts.collection !== undefined) {
          await appendCollection(opts.collection, {
            uuid: collectionUuid(ctx.config.cluster.id),
            manifest_text: lines.map((l) => `${l}\n`).join(''),
            replication_desired: opts.replicas ?? null,
            storage_classes_desired: opts.storageClasses ?? null,
          })
        }
      })
    })

  program
    .command('get')
    .description('read a block or a file (one manifest line), verified; to stdout or -o FILE')
    .argument('<locator-or-manifest-line>', 'hash+size[+hints], or ". <locators> <pos:len:name>" (quote it)')
    .option('-o, --output <file>', 'write to FILE (through a temporary name, renamed once every block verified)')
    .option('--parallel <n>', 'blocks fetched at once', integer(1, 32), 3)
    .addOption(new Option('--progress', 'show a progress bar (default: with -o, when stderr is a terminal)'))
    .addOption(new Option('--no-progress', 'never show a progress bar'))
    .action(async (arg: string, opts: { output?: string; parallel: number; progress?: boolean }, command: Command) => {
      const { planRead } = await import('../client/manifest.js')
      const plan = planRead(arg)
      await withContext(command, async (ctx) => {
        const { getData } = await import('../client/get.js')
        await getData(ctx, plan, {
          file: opts.output,
          out: process.stdout,
          parallel: opts.parallel,
          progress: opts.output !== undefined ? showProgress(opts.progress) : opts.progress === true,
        })
      })
    })

  program
    .command('status')
    .description('every keepstore (reachable, version, volumes, free space, pull/trash counters; with cluster.etcd, live/down in etcd) and the last datamanager report')
    .action(async (_opts: unknown, command: Command) => {
      await withContext(command, async (ctx, global) => {
        const { clusterStatus, renderStatus, statusExitCode } = await import('../client/status.js')
        const status = await clusterStatus(ctx)
        process.stdout.write(global.json ? `${JSON.stringify(status, null, 2)}\n` : `${renderStatus(status)}\n`)
        return statusExitCode(status)
      })
    })

  program
    .command('index')
    .description("a keepstore's index (blocks and mtimes), optionally only hashes starting with PREFIX")
    .argument('<server>', 'keepstore uuid or url from the config')
    .argument('[prefix]', 'hex prefix', '')
    .action(async (server: string, prefix: string, _opts: unknown, command: Command) => {
      await withContext(command, async (ctx, global) => {
        const { showIndex } = await import('../client/admin.js')
        await showIndex(ctx, server, prefix, { json: global.json, out: process.stdout })
      })
    })

  program
    .command('mounts')
    .description("a keepstore's volumes")
    .argument('<server>', 'keepstore uuid or url from the config')
    .action(async (server: string, _opts: unknown, command: Command) => {
      await withContext(command, async (ctx, global) => {
        const { showMounts } = await import('../client/admin.js')
        await showMounts(ctx, server, { json: global.json, out: process.stdout })
      })
    })

  for (const kind of ['pull', 'trash'] as const) {
    program
      .command(kind)
      .description(`show, replace (set FILE, - = stdin) or clear a keepstore's ${kind} list`)
      .argument('<action>', 'show | set | clear')
      .argument('<server>', 'keepstore uuid or url from the config')
      .argument('[file]', 'JSON list for set (- = stdin)')
      .action(async (action: string, server: string, file: string | undefined, _opts: unknown, command: Command) => {
        if (!['show', 'set', 'clear'].includes(action)) command.error(`error: unknown action '${action}' (show, set or clear)`, { exitCode: KEEP_EXIT.usage })
        if (action === 'set' && file === undefined) command.error(`error: ${kind} set needs a FILE (or - for stdin)`, { exitCode: KEEP_EXIT.usage })
        if (action !== 'set' && file !== undefined) command.error(`error: ${kind} ${action} takes no FILE`, { exitCode: KEEP_EXIT.usage })
        await withContext(command, async (ctx, global) => {
          const { showList, setList } = await import('../client/admin.js')
          const out = { json: global.json, out: process.stdout }
          if (action === 'show') await showList(ctx, kind, server, out)
          else await setList(ctx, kind, server, action === 'set' ? file : undefined, out)
        })
      })
  }

  program
    .command('untrash')
    .description('restore the trashed copies of a block on every keepstore')
    .argument('<locator>', 'hash[+size]')
    .action(async (locator: string, _opts: unknown, command: Command) => {
      await withContext(command, async (ctx, global) => {
        const { untrash } = await import('../client/admin.js')
        await untrash(ctx, locator, { json: global.json, out: process.stdout })
      })
    })

  program
    .command('sign')
    .description('sign a locator for the token in use (needs the config\'s blobSigningKey)')
    .argument('<locator>', 'hash+size[+hints]')
    .action(async (locator: string, _opts: unknown, command: Command) => {
      await withContext(command, async (ctx) => {
        const { sign } = await import('../client/admin.js')
        process.stdout.write(`${sign(ctx, locator)}\n`)
      })
    })

  return program
}

async function main(): Promise<void> {
  // A reader that stops early (`keep get … | head`) closes the pipe: stop quietly, as a command killed by SIGPIPE would.
  // Any other write error (a full disk behind a redirect: ENOSPC) is one line, not a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') process.stderr.write(`keep: cannot write to stdout: ${err.message}\n`)
    process.exit(KEEP_EXIT.failed)
  })
  const program = buildProgram()
  program.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) })
  for (const sub of program.commands) sub.exitOverride()
  try {
    await program.parseAsync()
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with 0; a usage mistake (already printed) with 2.
      process.exitCode = err.exitCode === 0 ? KEEP_EXIT.ok : KEEP_EXIT.usage
      return
    }
    const code = exitCodeOf(err)
    if (code === undefined || !isKeepError(err)) {
      process.stderr.write(`keep: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exitCode = KEEP_EXIT.failed
      return
    }
    process.stderr.write(`keep: ${err.message.split('\n')[0]}\n`)
    process.exitCode = code
  }
}

await main()
