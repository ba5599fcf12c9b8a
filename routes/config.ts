// /config: what the daemon loaded, and what it skipped with why.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

const ConfigProblem = Type.Object({
  file: Type.String(),
  path: Type.String({ description: 'JSON path inside the file' }),
  reason: Type.String()
})

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
          problems: Type.Array(ConfigProblem)
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
}

export default config
