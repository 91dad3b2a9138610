'use strict'
// Mocha's spec reporter plus the lines CI reads at the end: one "failed: <full title>" line per
// failed test (so a log cut to its tail still names them) and then the closing
// "N passed, N failed[, N skipped]". The counts are mocha's own stats, never computed here.
const Mocha = require('mocha')

class FerryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options)
    const failed = []
    runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, (test, err) => {
      const reason = String((err && err.message) || err).split('\n')[0].slice(0, 300)
      failed.push(`failed: ${test.fullTitle()} -- ${reason}`)
    })
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats
      const skipped = pending > 0 ? `, ${pending} skipped` : ''
      const names = failed.length > 0 ? `\n${failed.join('\n')}` : ''
      process.stdout.write(`${names}\n${passes} passed, ${failures} failed${skipped}\n`)
    })
  }
}

module.exports = FerryReporter
