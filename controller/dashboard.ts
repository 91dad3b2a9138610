/**
 * Serves the web dashboard (built by `npm run build` from `ui/` into `dist/ui/`) under `/ui/`.
 * Everything it loads comes from this controller: the Content-Security-Policy allows no other
 * origin, so a page that tried to reach a CDN would fail in the browser test, not in production.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import express, { type Router } from 'express'
import { FerryError } from '../common/errors.js'

/** `dist/ui` next to the compiled `dist/controller`. */
export const DASHBOARD_DIR = fileURLToPath(new URL('../ui/', import.meta.url))

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

export function dashboardRouter(dir: string = DASHBOARD_DIR): Router {
  const router = express.Router()
  router.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', CSP)
    res.setHeader('X-Content-Type-Options', 'nosniff')
    next()
  })
  router.use(
    express.static(dir, {
      index: 'index.html',
      setHeaders(res, file) {
        // The page is small; always fetch the current build after an upgrade.
        if (file.endsWith('.html')) res.setHeader('Cache-Control', 'no-cache')
      },
    }),
  )
  router.use((_req, _res, next) => {
    next(
      existsSync(dir)
        ? new FerryError('NOT_FOUND', 'no such dashboard file')
        : new FerryError('NOT_FOUND', `the dashboard is not built (no ${dir}); run "npm run build"`),
    )
  })
  return router
}
