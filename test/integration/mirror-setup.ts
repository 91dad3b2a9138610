/** A controller and one worker under bootstrap, with the TLS source and the plaintext target registered: what the oracle suites share. */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import type { LocalStack } from '../../deploy/local-stack.js'
import { FerryProcess, http, stackSecretFlags, type HttpResult, uniqueName, waitFor } from './harness.js'
import { compareMirror, oracleDump, type Comparison, type OracleRecord } from './oracle.js'

export interface MirrorDeployment {
  controllerUrl: string
  worker: FerryProcess
  api: (method: string, path: string, body?: unknown) => Promise<HttpResult>
  stop: () => Promise<void>
}

/** Starts a controller and one worker for `prefix`, and registers `src-tls` (mTLS listener) and `dst`. */
export async function startMirrorDeployment(stack: LocalStack, prefix: string): Promise<MirrorDeployment> {
  const deployment = uniqueName(prefix)
  const redis = new Redis(stack.redis.url)
  const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '4000', ...stackSecretFlags(stack)]
  const controller = new FerryProcess(`${prefix}-controller`, ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', ...common])
  const worker = new FerryProcess(`${prefix}-worker`, ['bootstrap', '--role', 'worker', '--id', 'w1', ...common])
  try {
    const live = await waitFor('controller and worker registered', async () => {
      const instances = await listInstances(redis, createKeys(deployment))
      return instances.some((i) => i.role === 'worker') ? instances.find((i) => i.role === 'controller' && i.url) : undefined
    }, 90000)
    const controllerUrl = live.url as string
    const api = (method: string, path: string, body?: unknown): Promise<HttpResult> => http(method, `${controllerUrl}${path}`, body)
    const clusters = [
      { name: 'src-tls', bootstrapServers: [stack.source.ssl], securityProtocol: 'SSL', tls: { caFile: stack.source.caFile, certFile: stack.source.clientCertFile, keyFile: stack.source.clientKeyFile } },
      { name: 'dst', bootstrapServers: [stack.target.plaintext] },
    ]
    for (const cluster of clusters) expect((await api('POST', '/v1/clusters', cluster)).status).to.equal(201)
    return {
      controllerUrl,
      worker,
      api,
      stop: async () => {
        await Promise.all([controller.stop(20000), worker.stop(20000)])
      },
    }
  } finally {
    redis.disconnect()
  }
}

/**
 * Reads the target (read_committed) until it holds every source record or the time is up, and
 * returns the last comparison: the caller asserts on it, so a stalled mirror fails with the
 * diff, not with a bare timeout.
 */
export async function awaitMirror(targetBrokers: string, targetTopic: string, source: Map<number, OracleRecord[]>, mode: 'exact' | 'at-least-once', timeoutMs: number): Promise<Comparison> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const target = await oracleDump(targetBrokers, targetTopic).catch(() => new Map<number, OracleRecord[]>())
    const comparison = compareMirror(source, target, mode)
    const settled = comparison.missing === 0 && comparison.problems.length === 0
    if (settled || Date.now() > deadline) return comparison
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

/** The warn-and-above lines one group's task wrote to a worker's log (pino JSON, level 40+). */
export function warningsOf(worker: FerryProcess, group: string): Array<Record<string, unknown>> {
  return worker
    .log()
    .split('\n')
    .flatMap((line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>
        return entry.group === group && Number(entry.level) >= 40 ? [entry] : []
      } catch {
        return []
      }
    })
}
