// Child process: a keepstore whose modules are already loaded. It imports what
// bin/keepstore imports, prints `warm`, then waits for one line on stdin (a
// JSON array of arguments) and runs bin/keepstore's own compiled entry point
// with them. Crash tests restart keepstores dozens of times: a warm launcher
// takes the module loading (most of a start-up) out of each restart.
import { once } from 'node:events'
import { createInterface } from 'node:readline'

await Promise.all([
  import('../../keepstore/server.js'),
  import('../../shared/config.js'),
  import('../../shared/cli.js'),
  import('../../shared/logger.js'),
  import('commander'),
])
process.stdout.write('warm\n')
const lines = createInterface({ input: process.stdin })
const [line] = (await once(lines, 'line')) as [string]
lines.close()
process.stdin.destroy()
process.argv = [process.argv[0]!, process.argv[1]!, ...(JSON.parse(line) as string[])]
await import('../../bin/keepstore.js')
