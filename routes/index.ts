// Every route module, registered in one place (explicit imports work the same from src/ under
// tap and from dist/ when built, which folder autoloading of .ts/.js files does not).
import type { FastifyInstance } from 'fastify'
import plugins from './plugins.js'
import health from './health.js'
import config from './config.js'
import audit from './audit.js'
import metrics from './metrics.js'
import events from './events.js'
import pluginHealth from './plugin-health.js'
import invoke from './invoke.js'
import ui from './ui.js'

export async function registerRoutes (app: FastifyInstance): Promise<void> {
  await app.register(plugins)
  await app.register(health)
  await app.register(config)
  await app.register(audit)
  await app.register(metrics)
  await app.register(events)
  await app.register(pluginHealth)
  await app.register(invoke)
  await app.register(ui)
}
