/**
 * The only place that builds ZooKeeper paths. Layout under `/ferry/<deployment>`:
 *   clusters/<name>        cluster definition (JSON)
 *   groups/<name>          topic group: { spec, state } (JSON)
 *   assignments/<worker>   the partitions a worker must mirror (JSON, written by the leader only)
 *   election/n_<seq>       ephemeral-sequential candidates; the lowest is the leader
 *   epoch                  leader epoch: its znode version, bumped by each new leader
 *   status/<group>         the leader's view of a group: discovery errors, partitions (JSON)
 *   settings               deployment-wide switches operators flip at run time (JSON), e.g. auto-balancing
 *
 * @example
 *   const paths = createPaths('prod')
 *   paths.group('orders')   // '/ferry/prod/groups/orders'
 */
import { FerryError } from './errors.js'

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/

function segment(kind: string, value: string): string {
  if (!SEGMENT.test(value)) {
    throw new FerryError('INVALID_INPUT', `${kind} "${value}" is not a valid name (letters, digits, ".", "_", "-")`)
  }
  return value
}

export interface Paths {
  root: string
  clusters: string
  cluster(name: string): string
  groups: string
  group(name: string): string
  assignments: string
  assignment(worker: string): string
  election: string
  electionPrefix: string
  epoch: string
  statuses: string
  status(group: string): string
  /** Run-time switches of the deployment (auto-balancing); absent means every default. */
  settings: string
  /** Every persistent container the deployment needs, parents first. */
  containers(): string[]
}

export function createPaths(deployment: string): Paths {
  const root = `/ferry/${segment('deployment', deployment)}`
  const paths: Paths = {
    root,
    clusters: `${root}/clusters`,
    cluster: (name) => `${root}/clusters/${segment('cluster', name)}`,
    groups: `${root}/groups`,
    group: (name) => `${root}/groups/${segment('group', name)}`,
    assignments: `${root}/assignments`,
    assignment: (worker) => `${root}/assignments/${segment('worker', worker)}`,
    election: `${root}/election`,
    electionPrefix: `${root}/election/n_`,
    epoch: `${root}/epoch`,
    statuses: `${root}/status`,
    status: (group) => `${root}/status/${segment('group', group)}`,
    settings: `${root}/settings`,
    containers: () => ['/ferry', root, paths.clusters, paths.groups, paths.assignments, paths.election, paths.statuses],
  }
  return paths
}
