/**
 * Runs the local stack in the foreground until SIGINT or SIGTERM, then stops it cleanly.
 *
 *   node dist/deploy/stack-cli.js [--out <file>]
 *
 * Prints the connection details (ports, certificate files, SCRAM credentials, pids) as JSON on
 * stdout and writes the same JSON to --out (default `<tmpdir>/ferry-local-stack.json`), so
 * another shell or the demo can find the stack. Progress goes to stderr, keeping stdout
 * parseable (`... | jq .source`).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createLogger } from '../common/logger.js'
import { startLocalStack, type LocalStack } from './local-stack.js'

const DEFAULT_INFO_FILE = path.join(os.tmpdir(), 'ferry-local-stack.json')

function parseArgs(argv: string[]): { infoFile: string } {
  let infoFile = DEFAULT_INFO_FILE
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--out' && argv[i + 1] !== undefined) {
      infoFile = path.resolve(argv[++i] as string)
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: node dist/deploy/stack-cli.js [--out <file>]\n')
      process.exit(0)
    } else {
      process.stderr.write(`unknown argument "${arg}"; usage: node dist/deploy/stack-cli.js [--out <file>]\n`)
      process.exit(2)
    }
  }
  return { infoFile }
}

/** The stack as plain data: everything but the functions. */
function stackInfo(stack: LocalStack): Record<string, unknown> {
  const { dir, zookeeper, redis, source, target, processes } = stack
  const pids = Object.fromEntries(Object.entries(processes).map(([name, p]) => [name, p.pid]))
  return { dir, zookeeper, redis, source, target, pids, cliPid: process.pid }
}

async function main(): Promise<void> {
  const { infoFile } = parseArgs(process.argv.slice(2))
  const logger = createLogger({ name: 'stack-cli', destination: process.stderr })
  const log = (line: string): void => logger.info({ event: 'stack.progress' }, line)

  const stack = await startLocalStack({ log })
  const json = `${JSON.stringify(stackInfo(stack), null, 2)}\n`
  writeFileSync(infoFile, json, { mode: 0o600 }) // Holds the SCRAM password.
  process.stdout.write(json)
  log(`stack up; info in ${infoFile}; Ctrl-C (SIGINT) or SIGTERM stops it`)

  let stopping = false
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // A second signal means "now": exiting SIGKILLs the servers through the exit hook.
      log(`${signal} again: exiting without waiting`)
      process.exit(130)
    }
    stopping = true
    log(`${signal}: stopping the stack`)
    stack
      .stop()
      .then(() => {
        removeInfoFileIfOurs(infoFile, stack.dir)
        process.exit(0)
      })
      .catch((error: unknown) => {
        logger.error({ event: 'stack.stop_failed', err: error }, 'stopping the stack failed')
        process.exit(1)
      })
  }
  process.on('SIGINT', shutdown)
  process.on('SIGTERM', shutdown)
}

/** Another CLI may have overwritten the file since; its info must stay. */
function removeInfoFileIfOurs(infoFile: string, dir: string): void {
  try {
    const info = JSON.parse(readFileSync(infoFile, 'utf8')) as { dir?: unknown }
    if (info.dir === dir) rmSync(infoFile, { force: true })
  } catch {
    // Already gone or unreadable: nothing of ours to remove.
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
