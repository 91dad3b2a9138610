'use strict'
// Integration suites start real servers (Kafka takes ~10 s), so the default 2 s timeout is far too short.
module.exports = {
  reporter: './test/reporter.cjs',
  timeout: 120000,
  slow: 5000,
  exit: true,
  forbidOnly: true,
  require: ['./dist/test/hooks.js'],
}
