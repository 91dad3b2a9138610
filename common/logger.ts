/**
 * The pino logger every process uses. JSON to stdout (no transport thread), with secrets
 * redacted by path as a second line of defence: code must not log secrets in the first place.
 *
 * @example
 *   const logger = createLogger({ name: 'worker', level: 'info' })
 *   logger.info({ event: 'worker.task_started', group }, 'mirroring started')
 */
import pino, { type Logger, type LevelWithSilent } from 'pino'

export type { Logger }

/** Field paths whose values are never written, wherever they appear in a log object. */
export const REDACTED_PATHS: readonly string[] = [
  'password',
  '*.password',
  '*.*.password',
  'sasl.password',
  '*.sasl.password',
  'key',
  'privateKey',
  '*.privateKey',
  'token',
  '*.token',
]

export interface LoggerOptions {
  name: string
  /** Default: FERRY_LOG_LEVEL or 'info'. */
  level?: LevelWithSilent
  /** Extra fields on every line, e.g. { instance: id }. */
  base?: Record<string, unknown>
  /** Where to write; default stdout. */
  destination?: NodeJS.WritableStream
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? ((process.env.FERRY_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info')
  return pino(
    {
      name: options.name,
      level,
      base: { pid: process.pid, ...options.base },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  )
}

/** A logger that writes nothing, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
