/**
 * Bearer-token access control for the controller's REST API, and the `api.change` audit line.
 *
 * Tokens come from `--api-tokens-file` / FERRY_API_TOKENS_FILE (one `<name> <role> <token>` a
 * line, `#` comments) and/or FERRY_API_TOKENS (the same lines separated by `;` or newlines).
 * Roles: `admin` (everything) and `read` (GET/HEAD only). With no token configured the API is
 * closed (every request but the probes and the dashboard's files is a 401 saying how to open
 * it), unless the controller was started with `--api-open` / FERRY_API_OPEN=true (local
 * development, the demo, tests): then anyone who can reach it may change anything. The
 * controller says which of the three it is at start and on /readyz (`api`).
 *
 * Only SHA-256 digests of the tokens are kept; a presented token is hashed and compared with
 * every configured digest with `timingSafeEqual` (no early exit), so neither the comparison nor
 * the loop leaks how much of a token matched. Tokens are never logged: the audit line names the
 * token's `name`.
 *
 * @example
 *   const tokens = loadApiTokens({ file: config.apiTokensFile, env: process.env })
 *   app.use(createAuth({ tokens, logger }))
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { NextFunction, Request, Response } from 'express'
import { FerryError, errorMessage } from '../common/errors.js'
import type { Logger } from '../common/logger.js'

export const apiRoles = ['admin', 'read'] as const
export type ApiRole = (typeof apiRoles)[number]

export interface ApiToken {
  /** Who: written to audit lines instead of the token. */
  name: string
  role: ApiRole
  /** SHA-256 of the token. */
  digest: Buffer
}

/** How the API admits callers: bearer tokens, anyone (--api-open), or no one (the default without tokens). */
export type ApiAccess = 'tokens' | 'open' | 'closed'

export function apiAccess(tokens: readonly ApiToken[], open: boolean): ApiAccess {
  return tokens.length > 0 ? 'tokens' : open ? 'open' : 'closed'
}

/** Why a closed API refused a request, and how to open it. */
export const CLOSED_API_MESSAGE =
  'this API is closed: no API tokens are configured. Configure tokens (--api-tokens-file, FERRY_API_TOKENS_FILE or FERRY_API_TOKENS) and send "Authorization: Bearer <token>", or start the controller with --api-open (FERRY_API_OPEN=true) to let anyone who can reach it read and change everything'

/** Who made a request; `anonymous` when the API is open. */
export interface Principal {
  name: string
  role: ApiRole
}

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$/
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
/**
 * Paths that need no token: the probes (with uReplicator's /health; load balancers and
 * supervisors have none) and the
 * dashboard's static files under /ui (a browser navigation cannot send a bearer header; the
 * dashboard's data comes from /v1, which does need one). Everything else does.
 */
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/health', '/', '/ui'])
const OPEN_PREFIXES = ['/ui/']

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

/**
 * Parse token lines. Errors name the source and line number, never the token itself.
 * `source` is e.g. the file path or `FERRY_API_TOKENS`.
 */
export function parseApiTokens(text: string, source: string): ApiToken[] {
  const tokens: ApiToken[] = []
  const problems: string[] = []
  const names = new Set<string>()
  const digests = new Set<string>()
  text.split(/[;\n]/).forEach((raw, index) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const where = `${source} entry ${index + 1}`
    const parts = line.split(/\s+/)
    if (parts.length !== 3) {
      problems.push(`${where}: expected "<name> <role> <token>" (3 fields), got ${parts.length}`)
      return
    }
    const [name, role, token] = parts as [string, string, string]
    if (!TOKEN_NAME.test(name)) problems.push(`${where}: name must be letters, digits, ".", "_", "@" or "-"`)
    // The role is not echoed: with swapped columns it would be the token.
    if (!(apiRoles as readonly string[]).includes(role)) problems.push(`${where}: role must be "admin" or "read"`)
    if (token.length < 8) problems.push(`${where}: token of "${name}" is shorter than 8 characters`)
    if (names.has(name)) problems.push(`${where}: name "${name}" is used twice`)
    const hex = digest(token).toString('hex')
    if (digests.has(hex)) problems.push(`${where}: the token of "${name}" is also given to another name`)
    names.add(name)
    digests.add(hex)
    tokens.push({ name, role: role as ApiRole, digest: digest(token) })
  })
  if (problems.length > 0) throw new FerryError('INVALID_CONFIG', `invalid API tokens: ${problems.join('; ')}`, { details: problems.map((message) => ({ field: 'apiTokens', message })) })
  return tokens
}

/** Tokens from the file (flag or FERRY_API_TOKENS_FILE) and FERRY_API_TOKENS, combined. */
export function loadApiTokens(options: { file?: string | undefined; env: NodeJS.ProcessEnv }): ApiToken[] {
  const tokens: ApiToken[] = []
  if (options.file !== undefined) {
    let text: string
    try {
      text = readFileSync(options.file, 'utf8')
    } catch (error) {
      throw new FerryError('INVALID_CONFIG', `cannot read the API tokens file ${options.file}: ${errorMessage(error)}`, { cause: error })
    }
    tokens.push(...parseApiTokens(text, options.file))
  }
  const inline = options.env.FERRY_API_TOKENS
  if (inline !== undefined && inline.trim() !== '') tokens.push(...parseApiTokens(inline, 'FERRY_API_TOKENS'))
  const seen = new Set<string>()
  for (const t of tokens) {
    if (seen.has(t.name)) throw new FerryError('INVALID_CONFIG', `invalid API tokens: name "${t.name}" is given both in the file and in FERRY_API_TOKENS`)
    seen.add(t.name)
  }
  return tokens
}

/** The configured token matching `presented`, comparing against every token in constant time. */
export function findToken(tokens: readonly ApiToken[], presented: string): ApiToken | undefined {
  const candidate = digest(presented)
  let found: ApiToken | undefined
  for (const token of tokens) {
    if (timingSafeEqual(candidate, token.digest) && found === undefined) found = token
  }
  return found
}

export function isWriteMethod(method: string): boolean {
  return WRITE_METHODS.has(method.toUpperCase())
}

/** Whether a path needs a token; compared the way express routes (case-insensitive, trailing slash ignored). */
export function needsToken(path: string): boolean {
  const normal = path.toLowerCase()
  const trimmed = normal.length > 1 ? normal.replace(/\/+$/, '') || '/' : normal
  if (OPEN_PATHS.has(trimmed)) return false
  return !OPEN_PREFIXES.some((prefix) => normal.startsWith(prefix))
}

/** The principal of a request (set by the auth middleware). */
export function principalOf(res: Response): Principal {
  return (res.locals.principal as Principal | undefined) ?? { name: 'anonymous', role: 'admin' }
}

/**
 * What a change targets, from its path: `{ group }`, `{ cluster }` or `{ topic }`. For creates
 * the name is in the body, read after parsing. Handlers may set `res.locals.auditTarget`.
 */
function changeTarget(req: Request, res: Response): Record<string, string> {
  // A handler that knows better (e.g. a topic named in a text body) says so.
  const declared = res.locals.auditTarget as Record<string, string> | undefined
  if (declared !== undefined) return declared
  const path = req.path
  const body = req.body as Record<string, unknown> | undefined
  const bodyName = typeof body === 'object' && body !== null && typeof body.name === 'string' ? body.name : undefined
  let m = /^\/v1\/groups\/([^/]+)/.exec(path)
  if (m?.[1] !== undefined) return { group: decodeURIComponent(m[1]) }
  if (path === '/v1/groups' && bodyName !== undefined) return { group: bodyName }
  m = /^\/v1\/clusters\/([^/]+)/.exec(path)
  if (m?.[1] !== undefined) return { cluster: decodeURIComponent(m[1]) }
  if (path === '/v1/clusters' && bodyName !== undefined) return { cluster: bodyName }
  m = /^\/topics\/([^/]+)/.exec(path)
  if (m?.[1] !== undefined) return { topic: decodeURIComponent(m[1]) }
  return {}
}

export interface AuthOptions {
  tokens: readonly ApiToken[]
  /** Without tokens: admit anyone (true) or no one (false, the default). Ignored with tokens. */
  open?: boolean
  logger: Logger
}

/**
 * Express middleware: authenticates and authorises (when tokens are configured), and writes one
 * `api.change` line for every successful write request, whoever made it.
 */
export function createAuth(options: AuthOptions): (req: Request, res: Response, next: NextFunction) => void {
  const { tokens, logger } = options
  const access = apiAccess(tokens, options.open === true)
  if (access === 'open') logger.warn({ event: 'api.auth_disabled', api: access }, 'no API tokens configured and --api-open given: the REST API is open to anyone who can reach it')
  else if (access === 'closed') logger.warn({ event: 'api.closed', api: access }, 'no API tokens configured (--api-tokens-file, FERRY_API_TOKENS_FILE or FERRY_API_TOKENS) and no --api-open: the REST API refuses every request but the probes')
  else logger.info({ event: 'api.auth_enabled', api: access, tokens: tokens.length, admins: tokens.filter((t) => t.role === 'admin').length }, 'REST API requires bearer tokens')

  const deny = (req: Request, res: Response, next: NextFunction, error: FerryError, who: string | undefined): void => {
    logger.warn({ event: 'api.denied', who: who ?? null, method: req.method, path: req.path, code: error.code }, 'request denied')
    if (error.code === 'UNAUTHORIZED') res.setHeader('WWW-Authenticate', 'Bearer realm="ferry"')
    next(error)
  }

  return (req, res, next) => {
    if (isWriteMethod(req.method)) {
      res.on('finish', () => {
        if (res.statusCode >= 400) return
        const who = principalOf(res)
        logger.info({ event: 'api.change', who: who.name, role: who.role, method: req.method, path: req.path, ...changeTarget(req, res), status: res.statusCode }, 'api change')
      })
    }
    if (access === 'open' || !needsToken(req.path)) {
      next()
      return
    }
    if (access === 'closed') {
      deny(req, res, next, new FerryError('UNAUTHORIZED', CLOSED_API_MESSAGE, { details: [{ field: 'Authorization', message: 'no token can be accepted: the API is closed (no tokens configured, no --api-open)' }] }), undefined)
      return
    }
    const header = req.headers.authorization
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header)
    if (match?.[1] === undefined) {
      deny(req, res, next, new FerryError('UNAUTHORIZED', 'this API needs a bearer token: send "Authorization: Bearer <token>"', { details: [{ field: 'Authorization', message: header === undefined ? 'is required' : 'must be "Bearer <token>"' }] }), undefined)
      return
    }
    const token = findToken(tokens, match[1])
    if (token === undefined) {
      deny(req, res, next, new FerryError('UNAUTHORIZED', 'the bearer token is not valid', { details: [{ field: 'Authorization', message: 'unknown token' }] }), undefined)
      return
    }
    res.locals.principal = { name: token.name, role: token.role } satisfies Principal
    if (isWriteMethod(req.method) && token.role !== 'admin') {
      deny(req, res, next, new FerryError('FORBIDDEN', `token "${token.name}" has the read role; ${req.method} needs an admin token`, { details: [{ field: 'Authorization', message: 'needs the admin role' }] }), token.name)
      return
    }
    next()
  }
}
