/**
 * `ferry render`: read a topic group and its two cluster definitions, render, write.
 *
 * Exit codes: 0 written; 2 the command line is wrong (unknown, missing, repeated or malformed
 * flag); 1 anything else (unreadable or invalid file, output directory not empty, write failed).
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { parseCluster, parseTopicGroup } from '../common/config.js'
import type { ClusterSpec, FieldProblem, TopicGroupSpec } from '../common/config.js'
import { FerryError, errorMessage } from '../common/errors.js'
import { RENDER_DEFAULTS, compressionTypes, render } from './render.js'
import type { CompressionType } from './render.js'
import { writeRendered } from './write.js'

/** Where the CLI writes; process.stdout/stderr by default, a buffer in tests. */
export interface CliIo {
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown }
}

export const RENDER_USAGE = `Usage: ferry render --group <group.json> --source <cluster.json> --target <cluster.json>
                    --deployment <name> --out <dir> [options]

Renders the files an operator deploys for one topic group: Kafka consumer/producer
properties, the group's JSON, a systemd worker unit and start/stop scripts.

Required:
  --group <file>        topic group definition (JSON)
  --source <file>       source cluster definition (JSON), the group's sourceCluster
  --target <file>       target cluster definition (JSON), the group's targetCluster
  --deployment <name>   deployment name (part of the consumer group.id)
  --out <dir>           output directory; must be absent or empty unless --force

Options:
  --workers <n>         worker instances the start script starts (default ${RENDER_DEFAULTS.workers})
  --install-dir <dir>   where the output is installed on the hosts (default ${RENDER_DEFAULTS.installDir})
  --compression <type>  producer compression: ${compressionTypes.join(', ')} (default ${RENDER_DEFAULTS.compressionType})
  --ferry-bin <path>    the ferry executable on the hosts (default ${RENDER_DEFAULTS.ferryBin})
  --force               replace a non-empty output directory
  -h, --help            show this help

Exit codes: 0 written, 1 bad input file or write failure, 2 bad command line.
`

const OPTIONS = {
  group: { type: 'string' },
  source: { type: 'string' },
  target: { type: 'string' },
  deployment: { type: 'string' },
  out: { type: 'string' },
  workers: { type: 'string' },
  'install-dir': { type: 'string' },
  compression: { type: 'string' },
  'ferry-bin': { type: 'string' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

const REQUIRED = ['group', 'source', 'target', 'deployment', 'out'] as const

/** A command-line mistake: exit code 2. */
class UsageError extends Error {}

/** A bad input file or a failed write: exit code 1. */
class InputError extends Error {}

/**
 * Run `ferry render` with `argv` (the arguments after `ferry`; a leading `render` is skipped).
 * Never throws: every failure is a message on `io.stderr` and a non-zero exit code.
 */
export async function runConfiguratorCli(
  argv: readonly string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const args = argv[0] === 'render' ? argv.slice(1) : [...argv]
  try {
    const flags = parseFlags(args)
    if (flags === 'help') {
      io.stdout.write(RENDER_USAGE)
      return 0
    }
    const group = await readSpec('--group', flags.group, parseTopicGroup)
    const source = await readSpec('--source', flags.source, parseCluster)
    const target = await readSpec('--target', flags.target, parseCluster)
    const files = renderOrExplain({
      group,
      source,
      target,
      deployment: flags.deployment,
      workers: flags.workers,
      installDir: flags.installDir,
      compressionType: flags.compressionType,
      ferryBin: flags.ferryBin,
    })
    const written = await writeRendered(files, flags.out, { force: flags.force })
    io.stdout.write(`ferry render: wrote ${written.length} files for topic group ${group.name}:\n`)
    for (const path of written) io.stdout.write(`  ${path}\n`)
    return 0
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`ferry render: ${error.message}\nRun "ferry render --help" for usage.\n`)
      return 2
    }
    io.stderr.write(`ferry render: ${errorMessage(error)}\n`)
    if (!(error instanceof InputError) && !(error instanceof FerryError)) {
      // Not one of ours: a bug. The stack helps whoever reports it.
      io.stderr.write(`${error instanceof Error ? (error.stack ?? '') : ''}\n`)
    }
    return 1
  }
}

interface Flags {
  group: string
  source: string
  target: string
  deployment: string
  out: string
  workers: number | undefined
  installDir: string | undefined
  compressionType: CompressionType | undefined
  ferryBin: string | undefined
  force: boolean
}

function parseFlags(args: string[]): Flags | 'help' {
  let parsed
  try {
    parsed = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false, tokens: true })
  } catch (error) {
    // node:util's messages already name the flag ("Unknown option '--grup'").
    throw new UsageError(errorMessage(error))
  }
  const { values, tokens } = parsed
  if (values.help === true) return 'help'

  const counts = new Map<string, number>()
  for (const token of tokens) {
    if (token.kind === 'option') counts.set(token.name, (counts.get(token.name) ?? 0) + 1)
  }
  const repeated = [...counts].filter(([, count]) => count > 1).map(([name]) => `--${name}`)
  if (repeated.length > 0) throw new UsageError(`given more than once: ${repeated.join(', ')}`)

  const missing = REQUIRED.filter((name) => values[name] === undefined || values[name] === '').map((name) => `--${name}`)
  if (missing.length > 0) throw new UsageError(`missing required ${missing.length === 1 ? 'flag' : 'flags'}: ${missing.join(', ')}`)

  let workers: number | undefined
  if (values.workers !== undefined) {
    if (!/^[1-9][0-9]*$/.test(values.workers)) {
      throw new UsageError(`--workers must be a whole number from 1 up, got ${JSON.stringify(values.workers)}`)
    }
    workers = Number(values.workers)
  }
  const compression = values.compression
  if (compression !== undefined && !(compressionTypes as readonly string[]).includes(compression)) {
    throw new UsageError(`--compression must be one of ${compressionTypes.join(', ')}, got ${JSON.stringify(compression)}`)
  }

  return {
    // REQUIRED were checked above; `?? ''` only satisfies the type checker.
    group: values.group ?? '',
    source: values.source ?? '',
    target: values.target ?? '',
    deployment: values.deployment ?? '',
    out: values.out ?? '',
    workers,
    installDir: values['install-dir'],
    compressionType: compression as CompressionType | undefined,
    ferryBin: values['ferry-bin'],
    force: values.force === true,
  }
}

/** Which flag carries each render() option, so a render error names what to change. */
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  deployment: '--deployment',
  installDir: '--install-dir',
  ferryBin: '--ferry-bin',
  workers: '--workers',
  compressionType: '--compression',
  'group.sourceCluster': '--group',
  'group.targetCluster': '--group',
}

function renderOrExplain(input: Parameters<typeof render>[0]): ReturnType<typeof render> {
  try {
    return render(input)
  } catch (error) {
    if (!(error instanceof FerryError) || !Array.isArray(error.details)) throw error
    const problems = error.details as FieldProblem[]
    const lines = problems.map((p) => `  ${FLAG_OF_FIELD[p.field] ?? flagOfClusterField(p.field)} ${p.field}: ${p.message}`)
    const usage = problems.some((p) => p.field in FLAG_OF_FIELD && FLAG_OF_FIELD[p.field] !== '--group')
    const message = `cannot render topic group ${input.group.name}:\n${lines.join('\n')}`
    throw usage ? new UsageError(message) : new InputError(message)
  }
}

function flagOfClusterField(field: string): string {
  if (field.startsWith('source.')) return '--source'
  if (field.startsWith('target.')) return '--target'
  return ''
}

async function readSpec<T extends TopicGroupSpec | ClusterSpec>(
  flag: string,
  path: string,
  parse: (input: unknown) => T,
): Promise<T> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new InputError(`${flag} ${path}: cannot read it: ${describeFsError(error)}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new InputError(`${flag} ${path}: not valid JSON: ${describeJsonError(errorMessage(error), text)}`)
  }
  try {
    return parse(json)
  } catch (error) {
    if (!(error instanceof FerryError) || !Array.isArray(error.details)) throw error
    const problems = (error.details as FieldProblem[]).map((p) => `  ${p.field}: ${p.message}`)
    const what = flag === '--group' ? 'topic group' : 'cluster'
    throw new InputError(`${flag} ${path}: invalid ${what}:\n${problems.join('\n')}`)
  }
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code
  switch (code) {
    case 'ENOENT':
      return 'no such file (ENOENT)'
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code})`
    case 'EISDIR':
      return 'it is a directory, not a file (EISDIR)'
    default:
      return errorMessage(error)
  }
}

/**
 * V8's JSON.parse messages can quote the text around the error ("..."password": hunter2 ...")
 * and cluster files hold secrets, so only the messages known to carry no input text are kept;
 * the position becomes a line and column.
 */
function describeJsonError(message: string, text: string): string {
  const positioned = /^(.*) in JSON at position (\d+)/.exec(message)
  if (positioned !== null && !positioned[1]?.includes('"')) {
    const position = Number(positioned[2])
    const before = text.slice(0, position)
    const line = before.split('\n').length
    const column = position - before.lastIndexOf('\n')
    return `${positioned[1]} at line ${line} column ${column}`
  }
  if (message.startsWith('Unexpected end of JSON input')) return 'the file ends in the middle of a value'
  if (message.startsWith('Unexpected token')) return 'unexpected token (not shown: the file may hold secrets)'
  return 'syntax error (not shown: the file may hold secrets)'
}
