/**
 * Which group status records a reconcile pass writes: those that changed (ignoring when they
 * were observed), the errors that are new since the last record, and the records no group owns.
 * Pure: the reconciler turns the result into ZooKeeper ops.
 */
import type { GroupStatusRecord } from '../common/store.js'

export interface StatusDiff {
  /** Records to write, in input order; `exists`: a record is there already (set, not create). */
  writes: Array<{ status: GroupStatusRecord; exists: boolean }>
  /** Written records whose error is new (another code or message than the stored one). */
  newErrors: GroupStatusRecord[]
  /**
   * Stored records of groups not in `next`: a pass that read a group just before it was deleted
   * writes its status after the delete removed it, and the next pass removes it.
   */
  removals: string[]
}

/** Equal but for `observedAt`. */
export function sameStatus(a: GroupStatusRecord | undefined, b: GroupStatusRecord): boolean {
  if (a === undefined) return false
  const { observedAt: _a, ...restA } = a
  const { observedAt: _b, ...restB } = b
  return JSON.stringify(restA) === JSON.stringify(restB)
}

export function diffStatuses(stored: ReadonlyMap<string, GroupStatusRecord>, next: readonly GroupStatusRecord[]): StatusDiff {
  const writes: StatusDiff['writes'] = []
  const newErrors: GroupStatusRecord[] = []
  for (const status of next) {
    const previous = stored.get(status.group)
    if (sameStatus(previous, status)) continue
    writes.push({ status, exists: stored.has(status.group) })
    const error = previous?.error
    if (status.error && (error?.code !== status.error.code || error.message !== status.error.message)) newErrors.push(status)
  }
  const groups = new Set(next.map((s) => s.group))
  const removals = [...stored.keys()].filter((group) => !groups.has(group))
  return { writes, newErrors, removals }
}
