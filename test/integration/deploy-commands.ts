/**
 * The commands the deploy/ manifests start, read from the files themselves, so integration
 * tests run exactly what Kubernetes and systemd would run (test/unit/deploy.test.ts checks the
 * manifests and units agree with each other).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseAllDocuments } from 'yaml'

export const DEPLOY_DIR = path.join(process.cwd(), 'deploy')

export interface ManifestContainer {
  name: string
  command?: string[]
  args?: string[]
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>
  envFrom?: Array<{ configMapRef?: { name: string } }>
  [key: string]: unknown
}

/** Every YAML document of a file under deploy/kubernetes, parsed (throws on any YAML error). */
export function kubernetesDocuments(file: string): Array<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const text = readFileSync(path.join(DEPLOY_DIR, 'kubernetes', file), 'utf8')
  const docs = parseAllDocuments(text)
  if (!Array.isArray(docs)) throw new Error(`${file}: empty`)
  const parsed: Array<Record<string, any>> = [] // eslint-disable-line @typescript-eslint/no-explicit-any
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`)
    const value = doc.toJS() as Record<string, any> | null // eslint-disable-line @typescript-eslint/no-explicit-any
    if (value !== null) parsed.push(value)
  }
  return parsed
}

/** The single container of the controller's Deployment or the workers' StatefulSet. */
export function roleContainer(role: 'controller' | 'worker'): ManifestContainer {
  const kind = role === 'controller' ? 'Deployment' : 'StatefulSet'
  const workload = kubernetesDocuments(`${role}.yaml`).find((doc) => doc.kind === kind)
  const container = (workload?.spec?.template?.spec?.containers as ManifestContainer[] | undefined)?.[0]
  if (container === undefined) throw new Error(`deploy/kubernetes/${role}.yaml has no ${kind} with a container`)
  return container
}

/** The `ferry` arguments the manifest runs for a role, e.g. ['bootstrap', '--role', 'worker']. */
export function manifestFerryArgs(role: 'controller' | 'worker'): string[] {
  return [...(roleContainer(role).args ?? [])]
}

/** The literal FERRY_* values the manifest sets on the container (not ConfigMap ones). */
export function manifestEnv(role: 'controller' | 'worker'): Record<string, string> {
  const env: Record<string, string> = {}
  for (const entry of roleContainer(role).env ?? []) if (entry.value !== undefined) env[entry.name] = entry.value
  return env
}
