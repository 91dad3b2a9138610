/**
 * `balanced`: every eligible worker gets floor(P/W) or ceil(P/W) of a group's partitions, and
 * as few partitions as possible change owner. Deterministic: inputs are sorted first, ties go
 * to the worker with the lower overall load, then the lower id.
 *
 * Consequences the unit tables check: when a worker leaves, only its partitions move; when one
 * joins, it takes at most ceil(P/W) and only those move.
 */
import { keyedStrategy, type Placer } from './types.js'

export const placeBalanced: Placer = ({ partitions, owners, workers: ids, load }) => {
  const result = new Array<string | undefined>(partitions.length).fill(undefined)
  if (ids.length === 0 || partitions.length === 0) return result
  const floor = Math.floor(partitions.length / ids.length)
  let ceilSlots = partitions.length % ids.length

  // What each eligible worker holds now, as positions in partition order.
  const held = new Map<string, number[]>(ids.map((id) => [id, []]))
  owners.forEach((owner, i) => {
    if (owner !== undefined) held.get(owner)?.push(i)
  })

  const totalLoad = (id: string): number => (load.get(id) ?? 0) + (held.get(id)?.length ?? 0)
  const byLoad = (a: string, b: string): number => totalLoad(a) - totalLoad(b) || a.localeCompare(b)

  // Each worker keeps up to floor; the ceil slots go to those that hold the most beyond it (fewest moves).
  const quota = new Map<string, number>(ids.map((id) => [id, floor]))
  const overFloor = ids
    .filter((id) => (held.get(id)?.length ?? 0) > floor)
    .sort((a, b) => (held.get(b)?.length ?? 0) - (held.get(a)?.length ?? 0) || byLoad(a, b))
  for (const id of overFloor) {
    if (ceilSlots === 0) break
    quota.set(id, floor + 1)
    ceilSlots--
  }
  // Remaining ceil slots go to the least-loaded workers.
  for (const id of ids.filter((i) => quota.get(i) === floor).sort(byLoad)) {
    if (ceilSlots === 0) break
    quota.set(id, floor + 1)
    ceilSlots--
  }

  const count = new Map<string, number>(ids.map((id) => [id, 0]))
  for (const id of ids) {
    const kept = (held.get(id) ?? []).slice(0, quota.get(id))
    for (const i of kept) result[i] = id
    count.set(id, kept.length)
  }
  const open = ids.filter((id) => (count.get(id) ?? 0) < (quota.get(id) ?? 0))
  let cursor = 0
  for (let i = 0; i < partitions.length; i++) {
    if (result[i] !== undefined) continue
    while (cursor < open.length && (count.get(open[cursor] as string) ?? 0) >= (quota.get(open[cursor] as string) ?? 0)) cursor++
    const id = open[cursor]
    if (id === undefined) break
    result[i] = id
    count.set(id, (count.get(id) ?? 0) + 1)
  }
  return result
}

export const balanced = keyedStrategy(placeBalanced)
