// FORK.md "Idle request queue timer": a connection's request queue with nothing pending and no
// throttling schedules no timer (kafkajs#1556: it re-armed a 1 ms timer forever per connection).
const { expect } = require('chai')
const RequestQueue = require('../src/network/requestQueue')
const { createLogger, LEVELS } = require('../src/loggers')

describe('kafkajs fork: idle request queue', () => {
  const logger = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => undefined })
  let queue
  beforeEach(() => {
    queue = new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 1000, enforceRequestTimeout: true, clientId: 'c', broker: 'b:9092', logger })
  })
  afterEach(() => queue.destroy())

  it('schedules nothing when nothing is pending and it is not throttled', () => {
    queue.scheduleCheckPendingRequests()
    expect(queue.throttleCheckTimeoutId).to.equal(null)
  })

  it('still schedules a check for the end of a throttle', () => {
    queue.maybeThrottle(50)
    queue.scheduleCheckPendingRequests()
    expect(queue.throttleCheckTimeoutId).to.not.equal(null)
  })
})
