import { expect } from 'chai'
import { count, rate, renderTable, since } from '../../cli/table.js'

describe('CLI tables and formats', () => {
  it('renders borderless columns under an upper-case header, numbers aligned right', () => {
    const text = renderTable(['name', 'lag'], [['orders', 5], ['payments-eu', 12345]], { right: [1] })
    // Columns are the widest cell plus three spaces; trailing spaces are trimmed.
    expect(text).to.equal(['NAME            LAG', 'orders            5', 'payments-eu   12345', ''].join('\n'))
  })

  it('shows missing cells as "-" and an empty table as "(none)"', () => {
    expect(renderTable(['a', 'b'], [['x', null], [undefined, 'y']])).to.equal(['A   B', 'x   -', '-   y', ''].join('\n'))
    expect(renderTable(['worker', 'zone'], [])).to.equal('WORKER   ZONE\n(none)\n')
  })

  it('formats counts, byte rates and ages with their units', () => {
    expect(count(1234567.4)).to.equal('1,234,567')
    expect(count(null)).to.equal('-')
    expect(rate(512)).to.equal('512 B/s')
    expect(rate(1536)).to.equal('1.5 KiB/s')
    expect(rate(3 * 1024 * 1024)).to.equal('3.0 MiB/s')
    const now = Date.parse('2026-01-01T00:10:00Z')
    expect(since('2026-01-01T00:09:58.700Z', now)).to.equal('1.3s')
    expect(since('2026-01-01T00:05:00Z', now)).to.equal('5m')
    expect(since('2025-12-31T21:00:00Z', now)).to.equal('3h')
    expect(since('not a time', now)).to.equal('-')
    expect(since(undefined, now)).to.equal('-')
  })
})
