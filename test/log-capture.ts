/**
 * A real pino logger whose JSON lines are kept in memory, for tests that assert what was logged.
 *
 * @example
 *   const { logger, lines } = captureLogs()
 *   expect(lines.find((l) => l.event === 'checkpoint.read_waited')?.late).to.equal(1)
 */
import { Writable } from 'node:stream'
import type { LevelWithSilent } from 'pino'
import { createLogger, type Logger } from '../common/logger.js'

export function captureLogs(level: LevelWithSilent = 'info'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  return { logger: createLogger({ name: 'test', level, destination }), lines }
}
