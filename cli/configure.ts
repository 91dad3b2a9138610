/**
 * `ferry configure`: render every topic group of a deployment (from a definitions file or a
 * controller's API), print the diff against what is on disk, then write only what changed.
 *
 * Exit codes: 0 done (also with --dry-run, and when nothing changed); 1 bad definitions,
 * unreachable controller or failed write; 2 bad command line.
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { FerryError, errorMessage } from '../common/errors.js'
import { RENDER_DEFAULTS, applyPlan, compressionTypes, fetchDefinitions, formatPlan, parseDefinitions, planChanges, renderAll, type CompressionType, type Definitions } from '../configurator/index.js'

export const CONFIGURE_USAGE = `Usage: ferry configure (--config <file> | --controller <url>) --out <dir> [options]

Renders the files every topic group needs on a host (Kafka client properties, group JSON,
worker env file with secret references, systemd unit, supervisord entry, tmpfiles.d layout,
start/stop scripts), shows a unified diff against <dir>, and writes only what changed.
Running it again with the same definitions changes nothing.

Input (one of):
  --config <file>         definitions, YAML or JSON: { deployment, render?, clusters: [...], groups: [...] }
  --controller <url>      read clusters and groups from a controller (GET /v1/clusters, /v1/groups);
                          sends FERRY_TOKEN as a bearer token when set; needs --deployment

Options:
  --out <dir>             the tree to update (usually the install dir itself)
  --deployment <name>     deployment name (overrides the file's)
  --group <name>          only this group (repeatable)
  --workers <n>           worker instances per group (default: the group's "workers", else ${RENDER_DEFAULTS.workers})
  --install-dir <dir>     where the tree lives on the hosts (default: the file's render.installDir, else ${RENDER_DEFAULTS.installDir})
  --compression <type>    ${compressionTypes.join(', ')} (default ${RENDER_DEFAULTS.compressionType})
  --ferry-bin <path>      the ferry executable on the hosts (default ${RENDER_DEFAULTS.ferryBin})
  --grace-period-ms <n>   drain time on stop (default ${RENDER_DEFAULTS.gracePeriodMs})
  --dry-run               show the diff, write nothing
  --prune                 delete files an earlier run wrote that are no longer rendered
  --quiet                 only the summary line, no diff
  -h, --help              show this help
`

const OPTIONS = {
  config: { type: 'string' },
  controller: { type: 'string' },
  out: { type: 'string' },
  deployment: { type: 'string' },
  group: { type: 'string', multiple: true },
  workers: { type: 'string' },
  'install-dir': { type: 'string' },
  compression: { type: 'string' },
  'ferry-bin': { type: 'string' },
  'grace-period-ms': { type: 'string' },
  'dry-run': { type: 'boolean' },
  prune: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

class UsageError extends Error {}

interface Io {
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown }
}

function wholeNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  if (!/^(0|[1-9][0-9]*)$/.test(value)) throw new UsageError(`${flag} must be a whole number, got ${JSON.stringify(value)}`)
  return Number(value)
}

/** Run `ferry configure` with the arguments after the command name. Never throws. */
export async function runConfigureCli(args: readonly string[], io: Io = { stdout: process.stdout, stderr: process.stderr }, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    let values
    try {
      values = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: false }).values
    } catch (error) {
      throw new UsageError(errorMessage(error))
    }
    if (values.help === true) {
      io.stdout.write(CONFIGURE_USAGE)
      return 0
    }
    if ((values.config === undefined) === (values.controller === undefined)) throw new UsageError('give exactly one of --config <file> or --controller <url>')
    if (values.out === undefined || values.out === '') throw new UsageError('missing required flag: --out')
    if (values.controller !== undefined && values.deployment === undefined) throw new UsageError('--controller needs --deployment (the API does not say which deployment it serves)')
    const compression = values.compression
    if (compression !== undefined && !(compressionTypes as readonly string[]).includes(compression)) {
      throw new UsageError(`--compression must be one of ${compressionTypes.join(', ')}, got ${JSON.stringify(compression)}`)
    }
    const workers = wholeNumber('--workers', values.workers)
    if (workers === 0) throw new UsageError('--workers must be at least 1')
    const gracePeriodMs = wholeNumber('--grace-period-ms', values['grace-period-ms'])

    let defs: Definitions
    if (values.config !== undefined) {
      let text: string
      try {
        text = await readFile(values.config, 'utf8')
      } catch (error) {
        throw new FerryError('INVALID_INPUT', `--config ${values.config}: cannot read it: ${errorMessage(error)}`)
      }
      defs = parseDefinitions(text, `--config ${values.config}`, values.deployment)
    } else {
      defs = await fetchDefinitions(values.controller ?? '', values.deployment ?? '', env.FERRY_TOKEN)
    }
    const files = renderAll(
      defs,
      {
        ...(workers === undefined ? {} : { workers }),
        ...(values['install-dir'] === undefined ? {} : { installDir: values['install-dir'] }),
        ...(compression === undefined ? {} : { compressionType: compression as CompressionType }),
        ...(values['ferry-bin'] === undefined ? {} : { ferryBin: values['ferry-bin'] }),
        ...(gracePeriodMs === undefined ? {} : { gracePeriodMs }),
      },
      values.group,
    )
    const plan = await planChanges(files, values.out)
    const formatted = formatPlan(plan)
    io.stdout.write(values.quiet === true ? (formatted.split('\n').at(-2) ?? '') + '\n' : formatted)
    if (values['dry-run'] === true) {
      io.stdout.write('ferry configure: dry run, nothing written\n')
      return 0
    }
    const touched = await applyPlan(plan, values.out, { prune: values.prune === true })
    io.stdout.write(`ferry configure: ${touched.length === 0 ? 'nothing to change' : `wrote ${touched.length} file${touched.length === 1 ? '' : 's'}`} in ${values.out}\n`)
    return 0
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`ferry configure: ${error.message}\nRun "ferry configure --help" for usage.\n`)
      return 2
    }
    io.stderr.write(`ferry configure: ${errorMessage(error)}\n`)
    return 1
  }
}
