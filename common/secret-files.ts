/**
 * Secret references in environment files: `FERRY_SECRET_FILES=NAME=/path[,NAME=/path...]` makes
 * a Ferry process set each variable NAME from the content of its file at start (one trailing
 * newline dropped), unless NAME is already set. The rendered env files hold these references,
 * never the values, so they can be world-readable; the secret files stay root:ferry 0640.
 *
 * @example
 *   loadSecretFiles(process.env)   // before reading any cluster's passwordEnv
 */
import { readFileSync } from 'node:fs'
import { FerryError, errorMessage } from './errors.js'

export const SECRET_FILES_ENV = 'FERRY_SECRET_FILES'
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

export interface SecretFileRef {
  name: string
  path: string
}

/** Parse the FERRY_SECRET_FILES value; throws naming the entry that is malformed. */
export function parseSecretFiles(value: string): SecretFileRef[] {
  const refs: SecretFileRef[] = []
  for (const [index, entry] of value.split(',').map((part) => part.trim()).entries()) {
    if (entry === '') continue
    const eq = entry.indexOf('=')
    const name = eq < 0 ? entry : entry.slice(0, eq)
    const path = eq < 0 ? '' : entry.slice(eq + 1)
    if (!ENV_NAME.test(name) || !path.startsWith('/')) {
      throw new FerryError('INVALID_CONFIG', `${SECRET_FILES_ENV} entry ${index + 1} must be NAME=/absolute/path (NAME a variable name), got ${JSON.stringify(entry)}`, {
        details: [{ field: SECRET_FILES_ENV, message: 'entries are NAME=/absolute/path separated by commas' }],
      })
    }
    refs.push({ name, path })
  }
  return refs
}

/**
 * Set every referenced variable that is not set yet from its file. Returns the names set.
 * @throws FerryError SECRET_UNREADABLE naming the variable and the path (never the content).
 */
export function loadSecretFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const value = env[SECRET_FILES_ENV]
  if (value === undefined || value.trim() === '') return []
  const loaded: string[] = []
  for (const ref of parseSecretFiles(value)) {
    if (env[ref.name] !== undefined && env[ref.name] !== '') continue
    let content: string
    try {
      content = readFileSync(ref.path, 'utf8')
    } catch (error) {
      throw new FerryError('SECRET_UNREADABLE', `${ref.name}: cannot read its file ${ref.path} (from ${SECRET_FILES_ENV}): ${errorMessage(error).replace(/^.*?: /, '')}`, {
        context: { field: SECRET_FILES_ENV },
      })
    }
    env[ref.name] = content.replace(/\r?\n$/, '')
    loaded.push(ref.name)
  }
  return loaded
}
