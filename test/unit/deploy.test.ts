/**
 * deploy/: the Kubernetes manifests, the systemd units and the sample definitions parse, carry
 * what production needs, and start the same `ferry` commands the integration tests run
 * (test/integration/rolling-restart.test.ts starts its workers with manifestFerryArgs()).
 */
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { expect } from 'chai'
import { PROCESS_ENV_NAMES, loadProcessConfig } from '../../common/process-config.js'
import { SECRET_FILES_ENV } from '../../common/secret-files.js'
import { parseDefinitions, renderAll } from '../../configurator/index.js'
import { DEPLOY_DIR, kubernetesDocuments, manifestEnv, manifestFerryArgs, roleContainer } from '../integration/deploy-commands.js'

type Doc = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

const K8S_DIR = path.join(DEPLOY_DIR, 'kubernetes')
const manifestFiles = readdirSync(K8S_DIR).filter((f) => f.endsWith('.yaml')).sort()
const allDocs = (): Doc[] => manifestFiles.flatMap((f) => kubernetesDocuments(f))
const roles = ['controller', 'worker'] as const
const workloadKind = { controller: 'Deployment', worker: 'StatefulSet' } as const
/** Env names read by other modules than process-config: secret references and API tokens (controller/auth.ts). */
const OTHER_FERRY_ENV = [SECRET_FILES_ENV, 'FERRY_API_TOKENS']

function workload(role: (typeof roles)[number]): Doc {
  const doc = kubernetesDocuments(`${role}.yaml`).find((d) => d.kind === workloadKind[role])
  if (doc === undefined) throw new Error(`no ${workloadKind[role]} in ${role}.yaml`)
  return doc
}

function configMapData(): Record<string, string> {
  const map = kubernetesDocuments('configmap.yaml').find((d) => d.kind === 'ConfigMap')
  return (map?.data ?? {}) as Record<string, string>
}

/** `key=value` lines of a systemd unit's [Service] section (repeated keys kept in order). */
function unitEntries(file: string): Array<[string, string]> {
  return readFileSync(path.join(DEPLOY_DIR, 'systemd', file), 'utf8')
    .split('\n')
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as [string, string])
}

/** ExecStart's ferry arguments without the binary and the unit-specific --id. */
function execStartArgs(execStart: string): string[] {
  const [binary, ...args] = execStart.split(/\s+/)
  expect(binary, 'ExecStart runs the ferry binary').to.match(/\/ferry$/)
  const id = args.indexOf('--id')
  if (id >= 0) args.splice(id, 2)
  const deployment = args.indexOf('--deployment')
  if (deployment >= 0) args.splice(deployment, 2)
  return args
}

describe('deploy/ manifests and units', () => {
  describe('Kubernetes', () => {
    it('parses every manifest, each document with apiVersion, kind, metadata.name and the ferry namespace', () => {
      expect(manifestFiles).to.include.members(['configmap.yaml', 'controller.yaml', 'worker.yaml', 'namespace.yaml', 'kustomization.yaml'])
      for (const doc of allDocs()) {
        expect(doc.apiVersion, JSON.stringify(doc).slice(0, 80)).to.be.a('string')
        expect(doc.kind).to.be.a('string')
        if (doc.kind === 'Kustomization') continue
        expect(doc.metadata?.name, `${doc.kind} metadata.name`).to.be.a('string')
        if (doc.kind !== 'Namespace') expect(doc.metadata?.namespace, `${doc.kind}/${doc.metadata?.name} namespace`).to.equal('ferry')
      }
    })

    it('lists every manifest in the kustomization', () => {
      const kustomization = kubernetesDocuments('kustomization.yaml')[0] as Doc
      expect([...(kustomization.resources as string[])].sort()).to.deep.equal(manifestFiles.filter((f) => f !== 'kustomization.yaml'))
    })

    it('runs two controllers, and workers scaled by the StatefulSet replicas with a headless service', () => {
      expect(workload('controller').spec.replicas).to.equal(2)
      const workers = workload('worker')
      expect(workers.spec.replicas).to.be.a('number').and.to.be.at.least(1)
      const headless = kubernetesDocuments('worker.yaml').find((d) => d.kind === 'Service' && d.metadata.name === workers.spec.serviceName)
      expect(headless?.spec?.clusterIP, 'the StatefulSet serviceName is a headless Service').to.equal('None')
      expect(workers.spec.updateStrategy.type, 'workers roll one at a time').to.equal('RollingUpdate')
    })

    for (const role of roles) {
      describe(role, () => {
        it('starts the same ferry command the integration tests run', () => {
          const container = roleContainer(role)
          expect(container.command).to.deep.equal(['node', '/app/bin/ferry.js'])
          expect(manifestFerryArgs(role)).to.deep.equal(['bootstrap', '--role', role])
        })

        it('sets only FERRY_* variables Ferry reads, and those load into a valid process configuration', () => {
          const container = roleContainer(role)
          const names = [...Object.keys(configMapData()), ...(container.env ?? []).map((e) => e.name)].filter((n) => n.startsWith('FERRY_'))
          for (const name of names) expect([...PROCESS_ENV_NAMES, ...OTHER_FERRY_ENV], `${name} is a setting Ferry reads`).to.include(name)
          const env: NodeJS.ProcessEnv = { ...configMapData(), ...manifestEnv(role), FERRY_ID: `ferry-${role}-0` }
          const config = loadProcessConfig({}, env)
          expect(config.deployment).to.equal('prod')
          expect(config.host).to.equal('0.0.0.0')
          expect(config.gracePeriodMs).to.equal(30000)
          if (role === 'worker') expect(config.healthPort).to.equal(9090)
          if (role === 'controller') expect(config.port).to.equal(8080)
        })

        it('probes /healthz (liveness) and /readyz (readiness) on the port the process listens on', () => {
          const container = roleContainer(role) as Doc
          const ports = new Map((container.ports as Array<{ name: string; containerPort: number }>).map((p) => [p.name, p.containerPort]))
          expect(container.livenessProbe.httpGet.path).to.equal('/healthz')
          expect(container.readinessProbe.httpGet.path).to.equal('/readyz')
          const listening = role === 'worker' ? Number(manifestEnv(role).FERRY_HEALTH_PORT) : Number(manifestEnv(role).FERRY_PORT)
          for (const probe of [container.livenessProbe, container.readinessProbe]) expect(ports.get(probe.httpGet.port), `probe port ${probe.httpGet.port}`).to.equal(listening)
        })

        it('has resource requests and limits, and a termination grace period longer than the drain', () => {
          const spec = workload(role).spec.template.spec as Doc
          const container = roleContainer(role) as Doc
          for (const kind of ['requests', 'limits']) {
            expect(container.resources?.[kind]?.cpu, `${kind}.cpu`).to.be.a('string')
            expect(container.resources?.[kind]?.memory, `${kind}.memory`).to.be.a('string')
          }
          expect(spec.terminationGracePeriodSeconds * 1000).to.be.above(Number(configMapData().FERRY_GRACE_PERIOD_MS))
        })

        it('mounts its config and secrets: every volume mounted, every mount backed, references resolvable', () => {
          const spec = workload(role).spec.template.spec as Doc
          const container = roleContainer(role) as Doc
          const volumes = new Map((spec.volumes as Doc[]).map((v) => [v.name as string, v]))
          const mounts = (container.volumeMounts as Doc[]).map((m) => m.name as string)
          expect([...volumes.keys()].sort()).to.deep.equal([...mounts].sort())
          expect([...volumes.values()].some((v) => v.secret?.secretName !== undefined), 'a Secret is mounted').to.equal(true)
          const configMaps = new Set(allDocs().filter((d) => d.kind === 'ConfigMap').map((d) => d.metadata.name as string))
          for (const ref of container.envFrom as Doc[]) expect(configMaps, 'envFrom ConfigMap exists').to.include(ref.configMapRef.name)
          // Secrets only by reference: a variable named like a secret comes from a Secret, or names a file.
          for (const entry of container.env as Doc[]) {
            if (!/PASSWORD|TOKEN|KEY/.test(entry.name as string)) continue
            if (/_FILE$/.test(entry.name as string)) expect(entry.value, entry.name).to.match(/^\//)
            else expect(entry.valueFrom?.secretKeyRef, entry.name).to.be.an('object')
          }
        })

        it('has a PodDisruptionBudget selecting its pods', () => {
          const labels = workload(role).spec.template.metadata.labels as Record<string, string>
          const pdb = allDocs().find((d) => d.kind === 'PodDisruptionBudget' && Object.entries(d.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => labels[k] === v))
          expect(pdb, `a PDB for ${role}`).to.not.equal(undefined)
          if (role === 'controller') expect(pdb?.spec.minAvailable).to.equal(1)
          if (role === 'worker') expect(pdb?.spec.maxUnavailable).to.equal(1)
          expect(workload(role).spec.selector.matchLabels).to.deep.equal(pdb?.spec.selector.matchLabels)
        })
      })
    }
  })

  describe('image', () => {
    it('deploy/Dockerfile builds the path the manifests run, as the user they run as', () => {
      const dockerfile = readFileSync(path.join(DEPLOY_DIR, 'Dockerfile'), 'utf8')
      const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
      expect(finalStage).to.include('WORKDIR /app').and.to.include('COPY --from=build /app/bin ./bin').and.to.include('COPY --from=build /app/dist ./dist')
      for (const role of roles) {
        expect(roleContainer(role).command).to.deep.equal(['node', '/app/bin/ferry.js'])
        const podSecurity = workload(role).spec.template.spec.securityContext as Doc
        expect(finalStage).to.include(`USER ${podSecurity.runAsUser}:${podSecurity.runAsGroup}`)
      }
    })
  })

  describe('systemd units', () => {
    for (const [file, role] of [['ferry-controller.service', 'controller'], ['ferry-worker@.service', 'worker']] as const) {
      it(`${file} starts the same ferry command as the manifest, drains within TimeoutStopSec and reads the env file`, () => {
        const entries = unitEntries(file)
        const get = (key: string): string[] => entries.filter(([k]) => k === key).map(([, v]) => v)
        const execStart = get('ExecStart')
        expect(execStart).to.have.length(1)
        expect(execStartArgs(execStart[0] ?? '')).to.deep.equal(manifestFerryArgs(role))
        expect(get('KillSignal')).to.deep.equal(['SIGTERM'])
        expect(Number.parseInt(get('TimeoutStopSec')[0] ?? '0', 10) * 1000).to.be.above(Number(configMapData().FERRY_GRACE_PERIOD_MS))
        expect(get('EnvironmentFile')).to.include('/etc/ferry/ferry.env')
        expect(get('Restart')).to.deep.equal(['on-failure'])
        expect(get('User')).to.deep.equal(['ferry'])
      })
    }

    it('ferry.env.example holds only settings Ferry reads, and loads into a valid configuration', () => {
      const env: NodeJS.ProcessEnv = {}
      for (const line of readFileSync(path.join(DEPLOY_DIR, 'systemd', 'ferry.env.example'), 'utf8').split('\n')) {
        if (line.startsWith('#') || !line.includes('=')) continue
        const name = line.slice(0, line.indexOf('='))
        expect([...PROCESS_ENV_NAMES, ...OTHER_FERRY_ENV], name).to.include(name)
        env[name] = line.slice(line.indexOf('=') + 1)
      }
      expect(loadProcessConfig({}, env).zookeeper).to.include('/ferry')
    })
  })

  describe('sample definitions (two data centres, two security zones)', () => {
    const text = readFileSync(path.join(DEPLOY_DIR, 'examples', 'two-dc-two-zone.yaml'), 'utf8')

    it('validates and spans two dcs and two zones', () => {
      const defs = parseDefinitions(text, 'two-dc-two-zone.yaml')
      const cells = new Set(defs.clusters.map((c) => `${c.dc}/${c.zone}`))
      expect([...cells].sort()).to.deep.equal(['dc-east/dmz', 'dc-east/secure', 'dc-west/dmz', 'dc-west/secure'])
      const dcs = new Set(defs.clusters.map((c) => c.dc))
      for (const group of defs.groups) if (group.dc !== undefined) expect(dcs).to.include(group.dc)
      expect(defs.groups.length).to.be.at.least(3)
    })

    it('renders every group, each worker unit starting the same bootstrap command as the manifests', () => {
      const files = renderAll(parseDefinitions(text, 'two-dc-two-zone.yaml'), {})
      const units = files.filter((f) => f.path.startsWith('systemd/'))
      expect(units).to.have.length(3)
      for (const unit of units) {
        const execStart = unit.content.split('\n').find((line) => line.startsWith('ExecStart='))?.slice('ExecStart='.length) ?? ''
        expect(execStartArgs(execStart), unit.path).to.deep.equal(manifestFerryArgs('worker'))
      }
    })
  })
})
