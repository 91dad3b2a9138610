#!/usr/bin/env node
// The `ferry` command: runs the compiled CLI (npm run build first).
import('../dist/cli/main.js').catch((error) => {
  process.stderr.write(`ferry: cannot load the compiled CLI (run "npm run build"): ${error.message}\n`)
  process.exit(1)
})
