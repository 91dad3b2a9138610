import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { FerryError } from '../../../common/errors.js'
import { writeRendered } from '../../../configurator/index.js'
import type { RenderedFile } from '../../../configurator/index.js'

const FILES: RenderedFile[] = [
  { path: 'bin/start-g.sh', content: '#!/bin/sh\necho start\n', mode: 0o755 },
  { path: 'g/consumer.properties', content: 'a=b\n', mode: 0o644 },
  { path: 'g/deep/er/file.txt', content: 'ü\n', mode: 0o600 },
]

/** A name longer than any file system allows: writing it fails with ENAMETOOLONG, after the other files. */
const UNWRITABLE: RenderedFile = { path: `g/${'x'.repeat(300)}`, content: 'never', mode: 0o644 }

async function rejection(promise: Promise<unknown>): Promise<FerryError> {
  try {
    await promise
  } catch (error) {
    expect(error).to.be.instanceOf(FerryError)
    return error as FerryError
  }
  throw new Error('expected a rejection')
}

describe('configurator writeRendered()', () => {
  let root: string

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'ferry-write-'))
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('writes every file with its content and mode, creating the directories, and returns the paths', async () => {
    const out = join(root, 'nested', 'out')
    const written = await writeRendered(FILES, out)
    expect(written).to.deep.equal(FILES.map((f) => join(out, f.path)).sort())
    for (const file of FILES) {
      const path = join(out, file.path)
      expect(await readFile(path, 'utf8')).to.equal(file.content)
      expect((await stat(path)).mode & 0o777, file.path).to.equal(file.mode)
    }
    expect((await stat(out)).mode & 0o777).to.equal(0o755)
    expect((await stat(join(out, 'g', 'deep'))).mode & 0o777).to.equal(0o755)
    expect(await readdir(join(root, 'nested')), 'no temporary directory left').to.deep.equal(['out'])
  })

  it('writes into an existing empty directory', async () => {
    const out = join(root, 'out')
    await mkdir(out)
    await writeRendered(FILES, out)
    expect(await readFile(join(out, 'g', 'consumer.properties'), 'utf8')).to.equal('a=b\n')
  })

  it('refuses to overwrite a non-empty directory and leaves it untouched', async () => {
    const out = join(root, 'out')
    await mkdir(out)
    await writeFile(join(out, 'keep.txt'), 'mine')
    const error = await rejection(writeRendered(FILES, out))
    expect(error.code).to.equal('CONFLICT')
    expect(error.message).to.include('is not empty').and.include('--force')
    expect(await readdir(out)).to.deep.equal(['keep.txt'])
    expect(await readdir(root)).to.deep.equal(['out'])
  })

  it('replaces a non-empty directory with force, dropping files that are no longer rendered', async () => {
    const out = join(root, 'out')
    await mkdir(out)
    await writeFile(join(out, 'stale.txt'), 'old')
    await writeRendered(FILES, out, { force: true })
    expect(await readdir(out)).to.have.members(['bin', 'g'])
    expect(await readdir(root), 'no temporary or old directory left').to.deep.equal(['out'])
  })

  it('refuses an output path that is a file', async () => {
    const out = join(root, 'out')
    await writeFile(out, 'x')
    const error = await rejection(writeRendered(FILES, out, { force: true }))
    expect(error.code).to.equal('CONFLICT')
    expect(await readFile(out, 'utf8')).to.equal('x')
  })

  it('leaves no output directory and no temporary directory when a write fails', async () => {
    const out = join(root, 'out')
    const error = await rejection(writeRendered([...FILES, UNWRITABLE], out))
    expect(error.code).to.equal('INTERNAL')
    expect(error.message).to.include(out)
    expect(await readdir(root)).to.deep.equal([])
  })

  it('keeps the previous directory intact when a forced write fails', async () => {
    const out = join(root, 'out')
    await mkdir(out)
    await writeFile(join(out, 'keep.txt'), 'mine')
    await rejection(writeRendered([...FILES, UNWRITABLE], out, { force: true }))
    expect(await readdir(out)).to.deep.equal(['keep.txt'])
    expect(await readFile(join(out, 'keep.txt'), 'utf8')).to.equal('mine')
    expect(await readdir(root)).to.deep.equal(['out'])
  })

  it('rejects paths that escape the output directory, repeat, or collide with a directory, before writing anything', async () => {
    const out = join(root, 'out')
    for (const files of [
      [{ path: '../escape', content: '', mode: 0o644 }],
      [{ path: '/etc/passwd', content: '', mode: 0o644 }],
      [{ path: 'a//b', content: '', mode: 0o644 }],
      [FILES[1] as RenderedFile, FILES[1] as RenderedFile],
      [{ path: 'g', content: '', mode: 0o644 }, FILES[1] as RenderedFile],
    ]) {
      const error = await rejection(writeRendered(files, out))
      expect(error.code, JSON.stringify(files.map((f) => f.path))).to.equal('INVALID_INPUT')
    }
    expect(await readdir(root)).to.deep.equal([])
  })
})
