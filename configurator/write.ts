/**
 * writeRendered(): puts rendered files on disk all at once or not at all.
 */
import { chmod, mkdir, mkdtemp, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { FerryError, errorMessage } from '../common/errors.js'
import type { RenderedFile } from './render.js'

export interface WriteRenderedOptions {
  /** Replace an existing non-empty output directory. Default false. */
  force?: boolean
}

/**
 * Write `files` under `outDir`: everything goes into a temporary directory next to `outDir`
 * (same file system, so the final rename is atomic), then that directory is renamed into place.
 * On any error the temporary directory is removed and `outDir` is left as it was.
 *
 * With `force`, an existing `outDir` is first moved aside, replaced, and only then deleted; if
 * the replacement fails it is moved back. Between the two renames `outDir` briefly does not
 * exist (Node has no atomic directory exchange).
 *
 * @returns the absolute paths written, sorted.
 * @throws FerryError INVALID_INPUT for a bad relative path, CONFLICT when `outDir` exists and
 *   is not empty (without `force`), INTERNAL for a failed write (with the cause).
 */
export async function writeRendered(
  files: readonly RenderedFile[],
  outDir: string,
  options: WriteRenderedOptions = {},
): Promise<string[]> {
  checkPaths(files)
  const target = resolve(outDir)
  const existing = await inspect(target)
  if (existing === 'not-a-directory') {
    throw new FerryError('CONFLICT', `${target} exists and is not a directory`, { context: { field: 'outDir' } })
  }
  if (existing === 'non-empty' && options.force !== true) {
    throw new FerryError('CONFLICT', `${target} is not empty; pass --force (force: true) to replace it`, {
      context: { field: 'outDir' },
    })
  }

  const parent = dirname(target)
  await mkdir(parent, { recursive: true })
  const staging = await mkdtemp(join(parent, `.${basename(target)}.tmp-`))
  try {
    const directories = new Set<string>([staging])
    for (const file of files) {
      const path = join(staging, ...file.path.split('/'))
      await mkdir(dirname(path), { recursive: true })
      for (let dir = dirname(path); dir !== staging; dir = dirname(dir)) directories.add(dir)
      const handle = await open(path, 'wx', file.mode)
      try {
        await handle.writeFile(file.content, 'utf8')
        await handle.sync()
      } finally {
        await handle.close()
      }
      // open()'s mode is filtered by the umask; the rendered mode is what the operator expects.
      await chmod(path, file.mode)
    }
    // mkdtemp makes 0700 and mkdir follows the umask: the directories are as readable as the files.
    for (const dir of directories) await chmod(dir, 0o755)
    await swapIn(staging, target, existing)
  } catch (error) {
    await rm(staging, { recursive: true, force: true })
    if (error instanceof FerryError) throw error
    throw new FerryError('INTERNAL', `cannot write ${target}: ${errorMessage(error)}`, {
      cause: error,
      context: { field: 'outDir' },
    })
  }
  return files.map((file) => join(target, ...file.path.split('/'))).sort()
}

type Existing = 'absent' | 'empty' | 'non-empty' | 'not-a-directory'

async function inspect(path: string): Promise<Existing> {
  try {
    const info = await stat(path)
    if (!info.isDirectory()) return 'not-a-directory'
    return (await readdir(path)).length === 0 ? 'empty' : 'non-empty'
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent'
    throw error
  }
}

async function swapIn(staging: string, target: string, existing: Existing): Promise<void> {
  if (existing === 'absent') {
    await rename(staging, target)
    return
  }
  if (existing === 'empty') {
    // rename() onto an empty directory works on POSIX; a directory that filled up since
    // inspect() makes it fail with ENOTEMPTY, which is what we want.
    await rename(staging, target)
    return
  }
  const aside = await mkdtemp(join(dirname(target), `.${basename(target)}.old-`))
  const old = join(aside, 'previous')
  await rename(target, old)
  try {
    await rename(staging, target)
  } catch (error) {
    await rename(old, target)
    await rm(aside, { recursive: true, force: true })
    throw error
  }
  // The new tree is in place: failing to delete the old one must not report the write as failed.
  await rm(aside, { recursive: true, force: true }).catch(() => undefined)
}

function checkPaths(files: readonly RenderedFile[]): void {
  const problems: { field: string; message: string }[] = []
  const seen = new Set<string>()
  for (const [index, file] of files.entries()) {
    const parts = file.path.split('/')
    if (file.path === '' || file.path.startsWith('/') || parts.some((part) => part === '' || part === '.' || part === '..' || part.includes('\\') || part.includes('\0'))) {
      problems.push({ field: `files[${index}].path`, message: `must be a relative path without "." or ".." parts, got ${JSON.stringify(file.path)}` })
      continue
    }
    if (seen.has(file.path)) problems.push({ field: `files[${index}].path`, message: `${file.path} appears twice` })
    seen.add(file.path)
  }
  // A file may not also be a directory of another file.
  for (const path of seen) {
    const parts = path.split('/')
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/')
      if (seen.has(prefix)) problems.push({ field: 'files', message: `${prefix} is both a file and the directory of ${path}` })
    }
  }
  if (problems.length > 0) {
    throw new FerryError('INVALID_INPUT', `cannot write rendered files: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, {
      details: problems,
    })
  }
}
