// Response and request shapes of the HTTP API, declared once; openapi.yaml is generated from them.
import { Type, type Static } from '@sinclair/typebox'
import { HEALTH_NAMES, STATE_NAMES, STATUS_NAMES } from '../src/supervisor/lifecycle.js'
import { PluginName as PluginNameSchema } from '../src/config/schema.js'

const literals = (values: readonly string[], description?: string) => Type.Union(values.map((v) => Type.Literal(v)), { description })

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'Stable PLUGVISOR_* code' }),
  error: Type.String(),
  message: Type.String()
}, { $id: 'ErrorResponse', description: 'Every error' })

export const Timestamp = Type.String({ format: 'date-time' })
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()])

export const pluginSummaryProperties = {
  name: Type.String(),
  version: Type.Union([Type.String(), Type.Null()]),
  description: Type.Union([Type.String(), Type.Null()]),
  state: literals(STATE_NAMES, 'Process lifecycle state'),
  health: literals(HEALTH_NAMES, 'Health verdict'),
  status: literals(STATUS_NAMES, 'One-word summary of state and health'),
  desired: literals(['running', 'stopped'], 'What the operator asked for (persisted)'),
  critical: Type.Boolean(),
  pid: Type.Union([Type.Integer(), Type.Null()]),
  port: Type.Union([Type.Integer(), Type.Null()]),
  startedAt: Nullable(Timestamp),
  uptimeMs: Type.Integer(),
  restartCount: Type.Integer({ description: 'Automatic restarts since the last operator start/restart' }),
  lastExit: Type.Union([Type.Object({
    code: Type.Union([Type.Integer(), Type.Null()]),
    signal: Type.Union([Type.String(), Type.Null()]),
    at: Timestamp
  }), Type.Null()]),
  nextRestartAt: Nullable(Timestamp),
  circuit: Type.Union([literals(['closed', 'open', 'half-open', 'isolated']), Type.Null()], { description: 'Circuit breaker of calls into the plugin; null until the plugin has been invoked through the proxy' })
}
export const PluginSummary = Type.Object(pluginSummaryProperties, { $id: 'PluginSummary' })
export type PluginSummaryT = Static<typeof PluginSummary>

export const PluginList = Type.Object({ plugins: Type.Array(Type.Ref(PluginSummary)) })

export const PluginResources = Type.Union([Type.Object({
  residentMemoryBytes: Type.Integer({ description: 'Resident memory of the whole process group (bytes; 0 when not running)' }),
  cpuSeconds: Type.Number({ description: 'CPU time (user + system) of every process the plugin has run since the daemon started (seconds)' }),
  sampledAt: Timestamp
}), Type.Null()], { description: 'Latest resource sample (every resources.sampleIntervalMs); null before the first' })

export const PluginDetail = Type.Object({
  ...pluginSummaryProperties,
  resources: PluginResources,
  manifest: Type.Record(Type.String(), Type.Unknown(), { description: 'The manifest with defaults filled in; sensitive config values redacted' })
})

export const PluginParams = Type.Object({ name: Type.String({ description: 'Plugin name' }) })

export const WaitQuery = Type.Object({
  wait: Type.Optional(literals(['healthy'], 'Wait (bounded by timeoutMs) until the plugin is healthy or degraded')),
  timeoutMs: Type.Integer({ minimum: 1, maximum: 600000, default: 30000, description: 'Bound of ?wait (milliseconds, default 30000)' })
})

export const BulkQuery = Type.Object({
  plugin: Type.Optional(Type.Array(PluginNameSchema, { description: 'Plugin name; repeat for several' })),
  all: Type.Optional(Type.Boolean({ description: 'Every loaded plugin' })),
  wait: Type.Optional(literals(['healthy'])),
  timeoutMs: Type.Integer({ minimum: 1, maximum: 600000, default: 30000 })
})

export const StateEvent = Type.Object({
  id: Type.Integer(),
  at: Timestamp,
  from: literals(STATE_NAMES),
  to: literals(STATE_NAMES),
  reason: Type.String(),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String(), Type.Null()]),
  restartCount: Type.Integer()
})

export const EventsQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  since: Type.Optional(Type.String({ format: 'date-time', description: 'Only events at or after this time' }))
})

export const LogsQuery = Type.Object({
  tail: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'Last N lines (default 100, at most 1000)' })
})

export const LogLine = Type.Object({
  at: Timestamp,
  stream: literals(['stdout', 'stderr']),
  line: Type.String()
})

export const StatusSummary = Type.Object({
  totalPlugins: Type.Integer(),
  healthyPlugins: Type.Integer(),
  degradedPlugins: Type.Integer(),
  unhealthyPlugins: Type.Integer(),
  unknownPlugins: Type.Integer(),
  restartingPlugins: Type.Integer(),
  failedPlugins: Type.Integer(),
  stoppedPlugins: Type.Integer()
}, { $id: 'StatusSummary' })

export const errorResponses = {
  400: Type.Ref(ErrorResponse),
  404: Type.Ref(ErrorResponse),
  500: Type.Ref(ErrorResponse)
}
