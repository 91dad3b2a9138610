import { expect } from 'chai'
import { childExecArgv } from '../../bootstrap/bootstrap.js'

describe('bootstrap child Node flags', () => {
  it('gives a worker a 16 MiB young generation, keeping inherited flags', () => {
    expect(childExecArgv('worker', ['--enable-source-maps'], '')).to.deep.equal(['--enable-source-maps', '--max-semi-space-size=16'])
  })

  it('leaves controllers alone, and never overrides an operator setting', () => {
    expect(childExecArgv('controller', [], '')).to.deep.equal([])
    expect(childExecArgv('worker', ['--max-semi-space-size=64'], '')).to.deep.equal(['--max-semi-space-size=64'])
    expect(childExecArgv('worker', [], '--max-semi-space-size=8')).to.deep.equal([])
  })
})
