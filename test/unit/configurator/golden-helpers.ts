/**
 * Golden files for the configurator. Each case is a folder under
 * test/unit/configurator/golden/<case>/ holding
 *   input.json   { options: { deployment, workers?, ... }, group, source, target } (written by hand)
 *   files/...    the expected rendered tree
 *   modes.txt    "<octal mode> <path>" per rendered file
 * Tests run compiled from dist/, so the folder is found from the repository root (the working
 * directory of `mocha`), never next to the compiled test. UPDATE_GOLDEN=1 rewrites files/ and
 * modes.txt from the current output.
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import { expect } from 'chai'
import { parseCluster, parseTopicGroup } from '../../../common/config.js'
import type { RenderInput, RenderedFile } from '../../../configurator/index.js'

export const GOLDEN_ROOT = join(process.cwd(), 'test', 'unit', 'configurator', 'golden')
export const UPDATE_GOLDEN = process.env['UPDATE_GOLDEN'] === '1'

export interface GoldenInput {
  /** The raw JSON, as a CLI would read it from files. */
  raw: { options: Record<string, unknown>; group: unknown; source: unknown; target: unknown }
  /** Parsed through the same schemas the CLI uses. */
  input: RenderInput
}

export async function goldenCases(): Promise<string[]> {
  const entries = await readdir(GOLDEN_ROOT, { withFileTypes: true })
  return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort()
}

export async function readGoldenInput(name: string): Promise<GoldenInput> {
  const raw = JSON.parse(await readFile(join(GOLDEN_ROOT, name, 'input.json'), 'utf8')) as GoldenInput['raw']
  const input = {
    ...(raw.options as Omit<RenderInput, 'group' | 'source' | 'target'>),
    group: parseTopicGroup(raw.group),
    source: parseCluster(raw.source),
    target: parseCluster(raw.target),
  }
  return { raw, input }
}

/** Every file under `dir`, as `/`-separated paths relative to it, sorted. */
export async function listTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .sort()
}

function formatModes(files: readonly RenderedFile[]): string {
  return files.map((file) => `${file.mode.toString(8).padStart(4, '0')} ${file.path}\n`).join('')
}

/** Compare `files` with the golden case, or rewrite it under UPDATE_GOLDEN=1. */
export async function expectGolden(name: string, files: readonly RenderedFile[]): Promise<void> {
  const caseDir = join(GOLDEN_ROOT, name)
  const filesDir = join(caseDir, 'files')
  if (UPDATE_GOLDEN) {
    await rm(filesDir, { recursive: true, force: true })
    for (const file of files) {
      const path = join(filesDir, ...file.path.split('/'))
      await mkdir(join(path, '..'), { recursive: true })
      await writeFile(path, file.content)
    }
    await writeFile(join(caseDir, 'modes.txt'), formatModes(files))
    return
  }
  const hint = `golden case ${name} (run with UPDATE_GOLDEN=1 to accept the new output, then review the diff)`
  expect(files.map((file) => file.path), `${hint}: file list`).to.deep.equal(await listTree(filesDir))
  for (const file of files) {
    const expected = await readFile(join(filesDir, ...file.path.split('/')), 'utf8')
    expect(file.content, `${hint}: ${file.path}`).to.equal(expected)
  }
  expect(formatModes(files), `${hint}: modes.txt`).to.equal(await readFile(join(caseDir, 'modes.txt'), 'utf8'))
}
