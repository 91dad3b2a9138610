import { expect } from 'chai'
import { servingRows, type WorkerReport } from '../../controller/groups-service.js'

const p = (partition: number) => ({ group: 'g', topic: 't', partition })
const report = (worker: string, partition: number, state: 'mirroring' | 'retrying', position = 10): WorkerReport => ({ ...p(partition), worker, state, position, targetTopic: 't', recordsMirrored: 0, deadLettered: 0, latencyCounts: [], latencyMaxMs: 0, bytesPerSec: 0, recordsPerSec: 0 })

describe('servingRows: who serves each assigned partition', () => {
  it('a stale owner reporting the partition does not hide its assigned worker serving it', () => {
    // w2 was given partition 0; w1, its previous owner, still reports it (listed first or last).
    for (const order of [[report('w1', 0, 'mirroring', 5), report('w2', 0, 'mirroring', 12)], [report('w2', 0, 'mirroring', 12), report('w1', 0, 'mirroring', 5)]]) {
      const [row] = servingRows(new Map([['w2', [p(0)]]]), new Map([['g/t/0', order]]))
      expect(row).to.deep.equal({ group: 'g', topic: 't', partition: 0, idealWorker: 'w2', actualWorker: 'w2', reportedBy: ['w1', 'w2'], state: 'mirroring', position: 12 })
    }
  })

  it('served by another worker only, or by nobody', () => {
    const rows = servingRows(
      new Map([['w2', [p(0), p(1), p(2)]]]),
      new Map([
        ['g/t/0', [report('w1', 0, 'mirroring')]],
        ['g/t/1', [report('w2', 1, 'retrying'), report('w1', 1, 'retrying')]],
      ]),
    )
    expect(rows.map((r) => [r.partition, r.actualWorker, r.state, r.reportedBy])).to.deep.equal([
      [0, 'w1', null, ['w1']],
      [1, null, 'retrying', ['w1', 'w2']],
      [2, null, null, []],
    ])
  })
})
