// GET /ui: the dashboard, static files from the package's ui/ folder (plain ES modules and CSS,
// no build step). The page holds no data, so it is open with tokens too; everything it shows
// comes from the API, with the token the operator types in.
import type { FastifyPluginAsync } from 'fastify'
import fastifyStatic from '@fastify/static'
import path from 'node:path'
import { packageRoot } from '../src/paths.js'

export const UI_ROOT = path.join(packageRoot, 'ui')

// Only our own files, no inline code, not framable: a page that holds an admin token in its
// session storage must not run anybody else's script.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const ui: FastifyPluginAsync = async (app) => {
  // A path that climbs out of the folder is refused by the file server with a bare 403; to the
  // client it is a file that does not exist (404 PLUGVISOR_NOT_FOUND), like any other.
  app.setErrorHandler((err: { statusCode?: number }, _req, reply) => {
    if (err.statusCode === 403) return reply.callNotFound()
    throw err
  })
  await app.register(fastifyStatic, {
    root: UI_ROOT,
    prefix: '/ui/',
    decorateReply: false,
    // The files change with the package version only; revalidate by ETag instead of guessing a max-age.
    cacheControl: false,
    setHeaders: (reply) => {
      void reply.headers({ 'cache-control': 'no-cache', 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' })
    }
  })
  app.get('/ui', { schema: { hide: true } }, (_req, reply) => reply.redirect('/ui/', 301))
}

export default ui
