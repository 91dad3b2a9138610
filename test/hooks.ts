/** Mocha root hooks: stop the shared local stack (if a test started one) after all tests. */
import { stopSharedStack } from './integration/harness.js'

export const mochaHooks = {
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(60000)
    await stopSharedStack()
  },
}
