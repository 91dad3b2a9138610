import { expect } from 'chai'
import { LATENCY_BOUNDS_MS, addLatencyCounts, emptyLatencyCounts, recordLatency, summariseLatency } from '../../common/latency.js'

describe('latency buckets', () => {
  it('summarises percentiles as bucket upper bounds, across merged reports', () => {
    const a = emptyLatencyCounts()
    for (let i = 0; i < 98; i++) recordLatency(a, 7) // bucket ≤ 10 ms
    const b = emptyLatencyCounts()
    recordLatency(b, 900) // ≤ 1000 ms
    recordLatency(b, 999999) // beyond the last bound
    const total = emptyLatencyCounts()
    addLatencyCounts(total, a)
    addLatencyCounts(total, b)
    const summary = summariseLatency(total, 999999)
    expect(summary).to.deep.equal({ records: 100, p50Ms: 10, p99Ms: 1000, maxMs: 999999 })
    expect(summariseLatency(emptyLatencyCounts(), null)).to.deep.equal({ records: 0, p50Ms: null, p99Ms: null, maxMs: null })
    expect(total.length).to.equal(LATENCY_BOUNDS_MS.length + 1)
  })
})
