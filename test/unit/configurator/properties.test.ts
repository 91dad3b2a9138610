import { expect } from 'chai'
import { escapeProperty, formatProperties } from '../../../configurator/index.js'

// Each expected line was checked once against java.util.Properties.load() (Kafka's own reader):
// loading `<key>=<value>` gives back exactly the input strings.
const TABLE: { text: string; key: string; value: string }[] = [
  { text: 'plain.key', key: 'plain.key', value: 'plain.key' },
  { text: '', key: '', value: '' },
  { text: ' leading', key: '\\ leading', value: '\\ leading' },
  { text: '  two leading', key: '\\ \\ two\\ leading', value: '\\  two leading' },
  { text: 'trailing ', key: 'trailing\\ ', value: 'trailing ' },
  { text: ' ', key: '\\ ', value: '\\ ' },
  { text: 'a=b', key: 'a\\=b', value: 'a=b' },
  { text: 'a:b', key: 'a\\:b', value: 'a:b' },
  { text: '#hash', key: '\\#hash', value: '#hash' },
  { text: '!bang', key: '\\!bang', value: '!bang' },
  { text: 'back\\slash', key: 'back\\\\slash', value: 'back\\\\slash' },
  { text: 'ends\\', key: 'ends\\\\', value: 'ends\\\\' },
  { text: '\\u0041', key: '\\\\u0041', value: '\\\\u0041' },
  { text: 'tab\there', key: 'tab\\there', value: 'tab\\there' },
  { text: 'new\nline', key: 'new\\nline', value: 'new\\nline' },
  { text: 'cr\rlf\n', key: 'cr\\rlf\\n', value: 'cr\\rlf\\n' },
  { text: 'ff\f', key: 'ff\\f', value: 'ff\\f' },
  { text: 'nul\u0000', key: 'nul\\u0000', value: 'nul\\u0000' },
  { text: 'del\u007f', key: 'del\\u007F', value: 'del\\u007F' },
  { text: 'über', key: '\\u00FCber', value: '\\u00FCber' },
  { text: '€', key: '\\u20AC', value: '\\u20AC' },
  { text: '😀', key: '\\uD83D\\uDE00', value: '\\uD83D\\uDE00' },
  { text: 'key with spaces', key: 'key\\ with\\ spaces', value: 'key with spaces' },
  { text: '${dir:/etc/x:key}', key: '${dir\\:/etc/x\\:key}', value: '${dir:/etc/x:key}' },
]

describe('configurator escapeProperty()', () => {
  for (const row of TABLE) {
    it(`escapes ${JSON.stringify(row.text)} as key ${row.key} and value ${row.value}`, () => {
      expect(escapeProperty(row.text, 'key')).to.equal(row.key)
      expect(escapeProperty(row.text, 'value')).to.equal(row.value)
    })
  }

  it('escapes as a value by default', () => {
    expect(escapeProperty(' a=b')).to.equal('\\ a=b')
  })

  it('always produces printable ASCII on one line', () => {
    const nasty = Array.from({ length: 0x180 }, (_, code) => String.fromCharCode(code)).join('') + '😀'
    for (const part of ['key', 'value'] as const) {
      expect(escapeProperty(nasty, part)).to.match(/^[\x20-\x7e]*$/)
    }
  })
})

describe('configurator formatProperties()', () => {
  it('writes comments first, then sorted key=value lines, ending in a newline', () => {
    const text = formatProperties({ 'b.key': 'two', 'a key': ' one', 'c:key': 'x=y' }, ['Header', '', 'second: line'])
    expect(text).to.equal('# Header\n#\n# second: line\n\na\\ key=\\ one\nb.key=two\nc\\:key=x=y\n')
  })

  it('keeps a line break inside a comment from starting a live line', () => {
    const text = formatProperties({}, ['evil\ninjected=1', 'ünï'])
    expect(text).to.equal('# evil\\u000Ainjected=1\n# \\u00FCn\\u00EF\n\n')
    expect(text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))).to.deep.equal([])
  })

  it('sorts keys by code unit, not by locale', () => {
    const text = formatProperties({ b: '1', B: '2', a: '3', _: '4' })
    expect(text).to.equal('B=2\n_=4\na=3\nb=1\n')
  })
})
