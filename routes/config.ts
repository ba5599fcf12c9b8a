// /config: what the daemon loaded, what it skipped with why, and reloading it.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { ConfigProblem } from '../src/config/load.js'
import { ReloadResult } from '../src/plugin-changes.js'
import { ErrorResponse, NotPersistedResponse, ReloadQuery } from './schemas.js'

const config: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/config/status', {
    schema: {
      tags: ['config'],
      summary: 'The config file, the plugins loaded from it, and every manifest that was skipped with file, JSON path and reason',
      response: {
        200: Type.Object({
          file: Type.String(),
          pluginsDir: Type.String(),
          dataDir: Type.String(),
          plugins: Type.Array(Type.Object({ name: Type.String(), source: Type.String() })),
          problems: Type.Array(Type.Ref(ConfigProblem))
        })
      }
    }
  }, async () => {
    const { loaded } = app.daemon
    return {
      file: loaded.file,
      pluginsDir: loaded.pluginsDir,
      dataDir: loaded.dataDir,
      plugins: loaded.manifests.map((m) => ({ name: m.name, source: m.source })),
      problems: loaded.problems
    }
  })

  app.post('/config/reload', {
    schema: {
      tags: ['config'],
      summary: 'Re-read the main config and the plugins folder and apply only what changed (SIGHUP does the same); ?dryRun=true reports without changing anything. An invalid manifest, or a reload hook that failed, keeps the running version of its plugin',
      querystring: ReloadQuery,
      response: { 200: ReloadResult, 400: Type.Ref(ErrorResponse), 500: Type.Ref(ErrorResponse), 503: NotPersistedResponse }
    }
  }, async (req) => app.daemon.changes.reload({ dryRun: req.query.dryRun, actor: req.principal?.name ?? 'anonymous' }))
}

export default config
