/**
 * Stalls of mirrored partitions, measured from outside: the group status sampled every few
 * hundred ms; a partition counts as stalled while its reported position stands still with lag
 * behind it (caught up is not a stall). Used by the churn and assignment-change tests.
 *
 * @example
 *   const sampler = sampleEvery(200, () => rowsOf('g'))
 *   ...
 *   const f = figures(sampler.samples, from, Date.now())
 *   await sampler.stop()
 */
export interface Row {
  partition: number
  worker: string | null
  state: string
  position: number | null
  lag?: number | null
}

export interface Sample {
  at: number
  rows: Row[]
}

export interface Figures {
  /** Per partition, the longest time (ms) its position stood still while it had lag. */
  longestByPartition: Map<number, number>
  longest: number
  /** Per partition, how many times its worker changed. */
  handOvers: Map<number, number>
}

/** Stalls and hand-overs over the samples taken in [from, to]. */
export function figures(samples: readonly Sample[], from: number, to: number): Figures {
  const longestByPartition = new Map<number, number>()
  const handOvers = new Map<number, number>()
  const last = new Map<number, { position: number | null; since: number; worker: string | null }>()
  for (const sample of samples.filter((s) => s.at >= from && s.at <= to)) {
    for (const row of sample.rows) {
      const before = last.get(row.partition)
      longestByPartition.set(row.partition, longestByPartition.get(row.partition) ?? 0)
      handOvers.set(row.partition, handOvers.get(row.partition) ?? 0)
      if (before === undefined) {
        last.set(row.partition, { position: row.position, since: sample.at, worker: row.worker })
        continue
      }
      if (row.worker !== null && before.worker !== null && row.worker !== before.worker) handOvers.set(row.partition, (handOvers.get(row.partition) ?? 0) + 1)
      const worker = row.worker ?? before.worker
      const advanced = typeof row.position === 'number' && (before.position === null || row.position > before.position)
      // Caught up (no lag) is not a stall: nothing was there to mirror.
      if (advanced || row.lag === 0) {
        last.set(row.partition, { position: row.position ?? before.position, since: sample.at, worker })
        continue
      }
      last.set(row.partition, { ...before, worker })
      longestByPartition.set(row.partition, Math.max(longestByPartition.get(row.partition) ?? 0, sample.at - before.since))
    }
  }
  return { longestByPartition, longest: Math.max(0, ...longestByPartition.values()), handOvers }
}

export const seconds = (ms: number): string => (ms / 1000).toFixed(1)

/** Calls `read` every `everyMs` until stopped, keeping what it answered with the time asked. */
export function sampleEvery(everyMs: number, read: () => Promise<Row[]>): { samples: Sample[]; stop: () => Promise<void> } {
  const samples: Sample[] = []
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const at = Date.now()
      const list = await read().catch(() => undefined)
      if (list !== undefined) samples.push({ at, rows: list })
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, everyMs - (Date.now() - at))))
    }
  })()
  return {
    samples,
    stop: async () => {
      sampling = false
      await sampler
    },
  }
}
