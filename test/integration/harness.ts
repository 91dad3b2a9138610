/**
 * What integration tests share: one real local stack per test run (started on first use,
 * stopped by the root hook in test/hooks.ts), Ferry processes run as real child processes,
 * and waiting on conditions with a deadline instead of sleeping.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, openSync, closeSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startLocalStack, type LocalStack } from '../../deploy/local-stack.js'

let stack: Promise<LocalStack> | undefined
const processes = new Set<FerryProcess>()

export function sharedStack(): Promise<LocalStack> {
  stack ??= startLocalStack({ log: (line) => process.stderr.write(`      [stack] ${line}\n`) })
  return stack
}

export async function stopSharedStack(): Promise<void> {
  for (const p of processes) p.kill('SIGKILL')
  processes.clear()
  const current = stack
  stack = undefined
  if (current) await (await current).stop()
}

/**
 * For a test whose subject is the target or Ferry itself, not the source's Kafka release: it runs
 * in `npm test` (the default release on both sides) and is skipped in the source-version lanes
 * (test/lanes.ts), which rerun the source-facing suites against older sources within CI's time.
 */
export function skipInSourceLanes(context: Mocha.Context): void {
  if (process.env.FERRY_SOURCE_KAFKA_VERSION) context.skip()
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`
}

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url))
let logRootDir: string | undefined
function logRoot(): string {
  logRootDir ??= mkdtempSync(path.join(os.tmpdir(), 'ferry-test-logs-'))
  return logRootDir
}

let keyFile: string | undefined
/** A secrets key file (`k1 <32 random bytes>`) for this test run. */
export function testSecretsKeyFile(): string {
  if (keyFile === undefined) {
    keyFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'ferry-test-key-')), 'secrets.key')
    writeFileSync(keyFile, `k1 ${randomBytes(32).toString('base64')}\n`, { mode: 0o600 })
  }
  return keyFile
}

/**
 * Flags that let Ferry processes read the stack's TLS files (its certificate directory is the
 * secrets directory) and store inline passwords sealed: without them, Ferry refuses both.
 */
export function stackSecretFlags(stack: LocalStack): string[] {
  return ['--secrets-dir', path.dirname(stack.source.caFile), '--secrets-key-file', testSecretsKeyFile()]
}

/**
 * A `ferry ...` process in its own process group, logging to a file. Controllers get
 * FERRY_API_OPEN=true (tests without tokens talk to an open API); pass `FERRY_API_OPEN: ''` in
 * `env` for a controller with the default, closed API.
 */
export class FerryProcess {
  readonly child: ChildProcess
  readonly logFile: string
  readonly exited: Promise<number | null>

  /** `nodeArgs`: flags for node itself, which bootstrap passes on to its child (e.g. `--cpu-prof`, not allowed in NODE_OPTIONS). */
  constructor(readonly name: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, nodeArgs: readonly string[] = []) {
    this.logFile = path.join(logRoot(), `${name}-${Date.now()}.log`)
    const fd = openSync(this.logFile, 'a')
    this.child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, FERRY_LOG_LEVEL: 'info', FERRY_API_OPEN: 'true', ...env } })
    closeSync(fd)
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)))
    processes.add(this)
    void this.exited.then(() => processes.delete(this))
  }

  /** Signal the whole process group (bootstrap and the child it supervises). */
  kill(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return
    try {
      process.kill(-this.child.pid, signal)
    } catch {
      // Already gone.
    }
  }

  async stop(timeoutMs = 30000): Promise<number | null> {
    this.kill('SIGTERM')
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs)
    const code = await this.exited
    clearTimeout(timer)
    return code
  }

  log(): string {
    return readFileSync(this.logFile, 'utf8')
  }
}

/** Every log line any Ferry process of this run has written so far. */
export function allFerryLogs(): string {
  return readdirSync(logRoot())
    .map((file) => readFileSync(path.join(logRoot(), file), 'utf8'))
    .join('\n')
}

/** Polls `check` until it returns a value other than undefined/false, or fails naming `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 60000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${reason}`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

export interface HttpResult {
  status: number
  body: any // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string
}

export async function http(method: string, url: string, body?: unknown, rawBody?: string): Promise<HttpResult> {
  const response = await fetch(url, {
    method,
    headers: body === undefined && rawBody === undefined ? {} : { 'content-type': 'application/json' },
    ...(rawBody !== undefined ? { body: rawBody } : body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  let parsed: unknown = undefined
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined
  } catch {
    parsed = undefined
  }
  return { status: response.status, body: parsed, text }
}

/** Whether every thread of a process is stopped (state T or t in /proc/PID/task/TID/stat). */
function allThreadsStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const state = stat.charAt(stat.lastIndexOf(')') + 2)
      return state === 'T' || state === 't'
    })
  } catch {
    return false
  }
}

/**
 * SIGSTOPs a process and returns once it is stopped: the signal takes effect a little after
 * kill() returns, and a fast server can still answer in between.
 */
export async function freeze(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP')
  await waitFor(`every thread of process ${pid} to stop`, () => allThreadsStopped(pid), 5000, 5)
}
