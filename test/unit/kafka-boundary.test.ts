/**
 * The Kafka client stays behind the port (common/kafka/port.ts): only common/kafka/ and the
 * kafkajs producers in worker/ import kafkajs; everything else takes its clients from a
 * `KafkaClientFactory` or `KafkaReadClients`, so another client library can replace it.
 */
import { expect } from 'chai'
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'

const ROOT = process.cwd()
const PRODUCT_DIRS = ['bootstrap', 'cli', 'common', 'configurator', 'controller', 'ui', 'worker']
/** The kafkajs implementations of the port. */
const ALLOWED = new Set(['worker/target-producer.ts', 'worker/transactional-producer.ts', 'worker/produce-records.ts'])

function sources(dir: string): string[] {
  let entries
  try {
    entries = readdirSync(path.join(ROOT, dir), { withFileTypes: true })
  } catch {
    return []
  }
  return entries.flatMap((entry) => {
    const rel = `${dir}/${entry.name}`
    if (entry.isDirectory()) return sources(rel)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [rel] : []
  })
}

/** Module specifiers of static imports, exports and dynamic imports in a TypeScript file. */
function specifiers(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)'([^']+)'/g)].map((m) => m[1] as string)
}

const namesKafkajs = (spec: string): boolean => spec === 'kafkajs' || spec.startsWith('kafkajs/') || spec.endsWith('/kafkajs.js')

describe('the Kafka client boundary', () => {
  it('finds the imports it checks (the scan sees kafkajs where it is imported)', () => {
    expect(specifiers(readFileSync(path.join(ROOT, 'common/kafka/kafkajs.ts'), 'utf8')).some(namesKafkajs)).to.equal(true)
    expect(specifiers(readFileSync(path.join(ROOT, 'worker/target-producer.ts'), 'utf8')).some(namesKafkajs)).to.equal(true)
  })

  it('only common/kafka/ and the kafkajs producers in worker/ import kafkajs', () => {
    const files = PRODUCT_DIRS.flatMap(sources)
    expect(files.length).to.be.greaterThan(50)
    const offenders = files.filter((file) => !file.startsWith('common/kafka/') && !ALLOWED.has(file) && specifiers(readFileSync(path.join(ROOT, file), 'utf8')).some(namesKafkajs))
    expect(offenders).to.deep.equal([])
  })
})
