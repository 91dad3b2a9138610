/**
 * `ferry configure` behind the CLI: every topic group of a deployment, from a definitions file
 * (YAML or JSON) or a controller's REST API, rendered into one tree; compared with what is on
 * disk (a unified diff per file); only what changed written (each file atomically), so a
 * second run with the same input changes nothing.
 *
 * @example
 *   const defs = parseDefinitions(yamlText, 'deploy/examples/two-dc.yaml')
 *   const files = renderAll(defs, { installDir: '/etc/ferry' })
 *   const plan = await planChanges(files, '/etc/ferry')
 *   process.stdout.write(formatPlan(plan))
 *   await applyPlan(plan, '/etc/ferry')
 */
import { chmod, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { createTwoFilesPatch } from 'diff'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { parseCluster, parseTopicGroup, type ClusterSpec, type FieldProblem, type TopicGroupSpec } from '../common/config.js'
import { FerryError, describeFetchError, errorMessage } from '../common/errors.js'
import { compareCodeUnits } from './properties.js'
import { compressionTypes, render, type RenderInput, type RenderedFile } from './render.js'

/** Written last into the output directory: which files configure owns (for stale detection). */
export const MANIFEST = '.ferry-configure.json'

export type RenderOptions = Pick<RenderInput, 'installDir' | 'workers' | 'compressionType' | 'ferryBin' | 'gracePeriodMs'>

export interface Definitions {
  deployment: string
  clusters: ClusterSpec[]
  groups: TopicGroupSpec[]
  /** Render options from the file; command-line flags win. */
  render: RenderOptions
  /** Per-group worker counts (`workers` inside a group entry of the file). */
  /** Group name → workers (a Map: group names are data, `constructor` included). */
  workersByGroup: ReadonlyMap<string, number>
}

const renderOptionsSchema = z
  .object({
    installDir: z.string().optional(),
    workers: z.number().int().min(1).max(1000).optional(),
    compressionType: z.enum(compressionTypes).optional(),
    ferryBin: z.string().optional(),
    gracePeriodMs: z.number().int().min(0).max(3600000).optional(),
  })
  .strict()

const fileSchema = z
  .object({
    deployment: z.string().optional(),
    render: renderOptionsSchema.optional(),
    clusters: z.array(z.record(z.unknown())).min(1, 'must list at least one cluster'),
    groups: z.array(z.record(z.unknown())).default([]),
  })
  .strict()

function prefixed(error: unknown, prefix: string): FieldProblem[] {
  if (error instanceof FerryError && Array.isArray(error.details)) {
    return (error.details as FieldProblem[]).map((p) => ({ field: p.field === '' ? prefix : `${prefix}.${p.field}`, message: p.message }))
  }
  return [{ field: prefix, message: errorMessage(error) }]
}

function invalid(source: string, problems: FieldProblem[]): FerryError {
  return new FerryError('INVALID_INPUT', `${source}: invalid definitions:\n${problems.map((p) => `  ${p.field}: ${p.message}`).join('\n')}`, { details: problems })
}

/**
 * Clusters and groups as plain objects (from a file or the API) → validated definitions.
 * Every problem is listed, each named by its place (`groups[1].sourceCluster`).
 * @throws FerryError INVALID_INPUT
 */
export function validateDefinitions(input: unknown, source: string, deploymentOverride?: string): Definitions {
  const parsed = fileSchema.safeParse(input)
  if (!parsed.success) {
    throw invalid(
      source,
      parsed.error.issues.map((issue) => ({ field: issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '['), message: issue.message })),
    )
  }
  const problems: FieldProblem[] = []
  const clusters: ClusterSpec[] = []
  const groups: TopicGroupSpec[] = []
  const workersByGroup = new Map<string, number>()
  parsed.data.clusters.forEach((raw, index) => {
    try {
      clusters.push(parseCluster(raw))
    } catch (error) {
      problems.push(...prefixed(error, `clusters[${index}]`))
    }
  })
  parsed.data.groups.forEach((raw, index) => {
    const { workers, ...spec } = raw
    if (workers !== undefined) {
      if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1 || workers > 1000) {
        problems.push({ field: `groups[${index}].workers`, message: 'must be a whole number from 1 to 1000' })
      } else if (typeof spec.name === 'string') {
        workersByGroup.set(spec.name, workers)
      }
    }
    try {
      groups.push(parseTopicGroup(spec))
    } catch (error) {
      problems.push(...prefixed(error, `groups[${index}]`))
    }
  })
  const clusterNames = new Set<string>()
  clusters.forEach((cluster, index) => {
    if (clusterNames.has(cluster.name)) problems.push({ field: `clusters[${index}].name`, message: `${cluster.name} is defined twice` })
    clusterNames.add(cluster.name)
  })
  const groupNames = new Set<string>()
  groups.forEach((group, index) => {
    if (groupNames.has(group.name)) problems.push({ field: `groups[${index}].name`, message: `${group.name} is defined twice` })
    groupNames.add(group.name)
    for (const field of ['sourceCluster', 'targetCluster'] as const) {
      if (!clusterNames.has(group[field])) problems.push({ field: `groups[${index}].${field}`, message: `names cluster ${group[field]}, which is not defined (defined: ${[...clusterNames].join(', ') || 'none'})` })
    }
  })
  const deployment = deploymentOverride ?? parsed.data.deployment
  if (deployment === undefined) problems.push({ field: 'deployment', message: 'is required (in the file, or --deployment)' })
  if (problems.length > 0) throw invalid(source, problems)
  return { deployment: deployment ?? '', clusters, groups, render: parsed.data.render ?? {}, workersByGroup }
}

/** A definitions file: YAML (a superset of JSON, so JSON files work too). */
export function parseDefinitions(text: string, source: string, deploymentOverride?: string): Definitions {
  let data: unknown
  try {
    data = parseYaml(text, { prettyErrors: true, uniqueKeys: true })
  } catch (error) {
    // The YAML parser quotes the offending line, which may hold a password: keep only where it is.
    const position = (error as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0]
    throw new FerryError('INVALID_INPUT', `${source}: not valid YAML${position ? ` at line ${position.line} column ${position.col}` : ''} (text not shown: the file may hold secrets)`)
  }
  return validateDefinitions(data, source, deploymentOverride)
}

/** Definitions from a controller's API (GET /v1/clusters and /v1/groups). Secrets there are already hidden. */
export async function fetchDefinitions(controllerUrl: string, deployment: string, token?: string): Promise<Definitions> {
  const base = controllerUrl.replace(/\/$/, '')
  const get = async (path: string): Promise<unknown> => {
    const response = await fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} }).catch((error: unknown) => {
      throw new FerryError('UNAVAILABLE', `cannot reach the controller at ${base}: ${describeFetchError(error)}`)
    })
    const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null
    if (!response.ok) throw new FerryError('UNAVAILABLE', `GET ${base}${path} answered ${response.status}: ${body?.error?.message ?? 'no error message'}`)
    return body
  }
  const [clusters, groups] = await Promise.all([get('/v1/clusters'), get('/v1/groups')])
  return validateDefinitions(
    {
      clusters: (clusters as { clusters?: unknown[] }).clusters ?? [],
      groups: ((groups as { groups?: Array<{ spec?: unknown }> }).groups ?? []).map((g) => g.spec),
    },
    `${base}/v1`,
    deployment,
  )
}

/** Every group rendered into one tree (group files never collide: each carries its name). */
export function renderAll(defs: Definitions, options: RenderOptions, only?: readonly string[]): RenderedFile[] {
  const clusters = new Map(defs.clusters.map((c) => [c.name, c]))
  const selected = only === undefined || only.length === 0 ? defs.groups : defs.groups.filter((g) => only.includes(g.name))
  const unknown = (only ?? []).filter((name) => !defs.groups.some((g) => g.name === name))
  if (unknown.length > 0) {
    throw new FerryError('INVALID_INPUT', `no topic group named ${unknown.join(', ')} (defined: ${defs.groups.map((g) => g.name).join(', ') || 'none'})`, {
      details: unknown.map((name) => ({ field: '--group', message: `${name} is not defined` })),
    })
  }
  const merged: RenderOptions = { ...defs.render, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) }
  const files = selected.flatMap((group) =>
    render({
      ...merged,
      ...(defs.workersByGroup.get(group.name) !== undefined && options.workers === undefined ? { workers: defs.workersByGroup.get(group.name) } : {}),
      group,
      source: clusters.get(group.sourceCluster) as ClusterSpec,
      target: clusters.get(group.targetCluster) as ClusterSpec,
      deployment: defs.deployment,
    }),
  )
  return files.sort((a, b) => compareCodeUnits(a.path, b.path))
}

export type ChangeKind = 'create' | 'update' | 'unchanged' | 'stale'

export interface FileChange {
  path: string
  kind: ChangeKind
  mode: number
  /** Mode on disk when it differs from the rendered one. */
  oldMode?: number
  content: string
  /** Unified diff for create/update (content part), empty otherwise. */
  diff: string
}

export interface Plan {
  changes: FileChange[]
  counts: Record<ChangeKind, number>
}

async function readExisting(path: string): Promise<{ content: string; mode: number } | undefined> {
  try {
    const [content, info] = await Promise.all([readFile(path, 'utf8'), stat(path)])
    return { content, mode: info.mode & 0o7777 }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new FerryError('INTERNAL', `cannot read ${path}: ${errorMessage(error)}`, { cause: error })
  }
}

async function readManifest(outDir: string): Promise<string[]> {
  const existing = await readExisting(join(outDir, MANIFEST))
  if (existing === undefined) return []
  try {
    const parsed = JSON.parse(existing.content) as { files?: unknown }
    return Array.isArray(parsed.files) ? parsed.files.filter((f): f is string => typeof f === 'string') : []
  } catch {
    return []
  }
}

/** Compare the rendered files with `outDir`: what would be created, updated, left alone, or is stale. */
export async function planChanges(files: readonly RenderedFile[], outDir: string): Promise<Plan> {
  const root = resolve(outDir)
  const changes: FileChange[] = []
  for (const file of files) {
    const existing = await readExisting(join(root, ...file.path.split('/')))
    if (existing === undefined) {
      changes.push({ path: file.path, kind: 'create', mode: file.mode, content: file.content, diff: createTwoFilesPatch('/dev/null', `b/${file.path}`, '', file.content, '', '', { context: 3 }) })
    } else if (existing.content !== file.content || existing.mode !== file.mode) {
      changes.push({
        path: file.path,
        kind: 'update',
        mode: file.mode,
        ...(existing.mode === file.mode ? {} : { oldMode: existing.mode }),
        content: file.content,
        diff: existing.content === file.content ? '' : createTwoFilesPatch(`a/${file.path}`, `b/${file.path}`, existing.content, file.content, '', '', { context: 3 }),
      })
    } else {
      changes.push({ path: file.path, kind: 'unchanged', mode: file.mode, content: file.content, diff: '' })
    }
  }
  const rendered = new Set(files.map((f) => f.path))
  for (const path of await readManifest(root)) {
    if (rendered.has(path)) continue
    const existing = await readExisting(join(root, ...path.split('/')))
    if (existing !== undefined) changes.push({ path, kind: 'stale', mode: existing.mode, content: existing.content, diff: '' })
  }
  const counts: Record<ChangeKind, number> = { create: 0, update: 0, unchanged: 0, stale: 0 }
  for (const change of changes) counts[change.kind]++
  return { changes, counts }
}

/** The diff an operator reviews: one patch per created or updated file, mode changes, stale files. */
export function formatPlan(plan: Plan): string {
  const out: string[] = []
  for (const change of plan.changes) {
    if (change.kind === 'create') out.push(`create ${change.path} (mode ${change.mode.toString(8)})\n${change.diff}`)
    if (change.kind === 'update') {
      out.push(`update ${change.path}${change.oldMode === undefined ? '' : ` (mode ${change.oldMode.toString(8)} -> ${change.mode.toString(8)})`}\n${change.diff}`)
    }
    if (change.kind === 'stale') out.push(`stale  ${change.path} (no longer rendered; --prune deletes it)\n`)
  }
  const c = plan.counts
  out.push(`${c.create} to create, ${c.update} to update, ${c.unchanged} unchanged, ${c.stale} stale\n`)
  return out.join('')
}

async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 })
  const temporary = join(dirname(path), `.${path.split('/').pop() ?? 'file'}.tmp-${process.pid}-${Date.now()}`)
  try {
    const handle = await open(temporary, 'wx', mode)
    try {
      await handle.writeFile(content, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await chmod(temporary, mode)
    await rename(temporary, path)
  } catch (error) {
    await rm(temporary, { force: true })
    throw new FerryError('INTERNAL', `cannot write ${path}: ${errorMessage(error)}`, { cause: error })
  }
}

/**
 * Write what the plan creates or updates (each file atomically: a reader sees the old or the new
 * content, never half), delete stale files when `prune`, then record the manifest. Unchanged
 * files are not touched. Returns the paths written or deleted.
 */
export async function applyPlan(plan: Plan, outDir: string, options: { prune?: boolean } = {}): Promise<string[]> {
  const root = resolve(outDir)
  const touched: string[] = []
  for (const change of plan.changes) {
    const path = join(root, ...change.path.split('/'))
    if (change.kind === 'create' || change.kind === 'update') {
      if (change.kind === 'update' && change.diff === '' && change.oldMode !== undefined) await chmod(path, change.mode)
      else await writeAtomically(path, change.content, change.mode)
      touched.push(change.path)
    } else if (change.kind === 'stale' && options.prune === true) {
      await unlink(path)
      touched.push(change.path)
    }
  }
  const owned = plan.changes.filter((c) => c.kind !== 'stale' || options.prune !== true).map((c) => c.path).sort(compareCodeUnits)
  const manifest = `${JSON.stringify({ files: owned }, null, 2)}\n`
  const current = await readExisting(join(root, MANIFEST))
  if (current?.content !== manifest) await writeAtomically(join(root, MANIFEST), manifest, 0o644)
  return touched
}
