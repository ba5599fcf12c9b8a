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
import calls from './calls.js'
import fallback from './fallback.js'
import { ConfigProblem } from '../src/config/load.js'
import { HealthReport, PluginHealth } from '../src/health/health-report.js'
import { HealthStats } from '../src/health/health-history.js'
import { CircuitInfo } from '../src/invoke/circuit.js'
import { CallStats } from '../src/invoke/call-stats.js'
import { FallbackEvent, FallbackInfo } from '../src/invoke/fallback.js'
import { StatusSummary } from '../src/status-summary.js'
import { HookEvent, PluginSummary } from '../src/supervisor/events.js'
import { HockeypuckHealth, HockeypuckStatus } from '../src/hosts/hockeypuck.js'
import { ErrorResponse } from './schemas.js'
import { LogLineBody } from '../src/process/log-ring.js'

export async function registerRoutes (app: FastifyInstance): Promise<void> {
  // The shapes routes refer to by $ref, published once under their $id.
  for (const s of [ConfigProblem, ErrorResponse, PluginSummary, HookEvent, StatusSummary, PluginHealth, HealthReport, HealthStats, CircuitInfo, CallStats, HockeypuckStatus, HockeypuckHealth, FallbackInfo, FallbackEvent, LogLineBody]) app.addSchema(s)
  await app.register(plugins)
  await app.register(health)
  await app.register(config)
  await app.register(audit)
  await app.register(metrics)
  await app.register(events)
  await app.register(pluginHealth)
  await app.register(invoke)
  await app.register(ui)
  await app.register(calls)
  await app.register(fallback)
}
