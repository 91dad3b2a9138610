/** Writes one benchmark's section into docs/benchmarks.md, replacing that section if present. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'

const FILE = path.join(process.cwd(), 'docs', 'benchmarks.md')
const HEADER = '# Ferry benchmarks\n\nEach section is written by its benchmark; the command that produced it is given with it.\n'

export function writeBenchSection(title: string, command: string, body: string): void {
  const existing = existsSync(FILE) ? readFileSync(FILE, 'utf8') : HEADER
  const section = `## ${title}\n\nCommand: \`${command}\` (run ${new Date().toISOString().slice(0, 10)})\n\n${body}\n`
  const pattern = new RegExp(`## ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n[\\s\\S]*?(?=\\n## |$)`)
  const next = pattern.test(existing) ? existing.replace(pattern, section.trimEnd() + '\n') : `${existing.trimEnd()}\n\n${section}`
  writeFileSync(FILE, next)
}
