/** Writes one section of a generated document under docs/, replacing that section if present. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'

export function writeSection(file: string, documentTitle: string, title: string, command: string, body: string): void {
  const target = path.join(process.cwd(), 'docs', file)
  const header = `# ${documentTitle}\n\nEach section is written by the command given with it, from a run on this project's machine.\n`
  const existing = existsSync(target) ? readFileSync(target, 'utf8') : header
  const section = `## ${title}\n\nCommand: \`${command}\` (run ${new Date().toISOString().slice(0, 10)})\n\n${body}\n`
  const pattern = new RegExp(`## ${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n[\\s\\S]*?(?=\\n## |$)`)
  const next = pattern.test(existing) ? existing.replace(pattern, section.trimEnd() + '\n') : `${existing.trimEnd()}\n\n${section}`
  writeFileSync(target, next)
}
