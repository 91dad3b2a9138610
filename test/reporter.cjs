'use strict'
// Mocha's spec reporter plus the one closing line CI reads: "N passed, N failed[, N skipped]".
// The counts are mocha's own stats, never computed here.
const Mocha = require('mocha')

class FerryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options)
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats
      const skipped = pending > 0 ? `, ${pending} skipped` : ''
      process.stdout.write(`\n${passes} passed, ${failures} failed${skipped}\n`)
    })
  }
}

module.exports = FerryReporter
