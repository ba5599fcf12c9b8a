// Response and request shapes of the HTTP API, declared once; openapi.yaml is generated from them.
import { Type, type Static } from '@sinclair/typebox'
import { HEALTH_NAMES, STATE_NAMES, STATUS_NAMES } from '../src/supervisor/lifecycle.js'
import { PluginName as PluginNameSchema } from '../src/config/schema.js'
import { TREND_NAMES } from '../src/health/trend.js'

const literals = (values: readonly string[], description?: string) => Type.Union(values.map((v) => Type.Literal(v)), { description })

export const ConfigProblem = Type.Object({
  file: Type.String({ description: "The file, or 'request body'" }),
  path: Type.String({ description: 'JSON path inside the file' }),
  reason: Type.String()
}, { $id: 'ConfigProblem' })

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'Stable PLUGVISOR_* code' }),
  error: Type.String(),
  message: Type.String(),
  problems: Type.Optional(Type.Array(Type.Ref(ConfigProblem), { description: 'A refused manifest or config: every problem found' }))
}, { $id: 'ErrorResponse', description: 'Every error' })

export const Timestamp = Type.String({ format: 'date-time' })
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()])

export const pluginSummaryProperties = {
  name: Type.String(),
  version: Type.Union([Type.String(), Type.Null()]),
  description: Type.Union([Type.String(), Type.Null()]),
  author: Type.Union([Type.String(), Type.Null()]),
  homepage: Type.Union([Type.String(), Type.Null()]),
  capabilities: Type.Array(Type.String(), { description: "The manifest's capabilities" }),
  tags: Type.Array(Type.String(), { description: "The manifest's tags" }),
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
  circuit: Type.Union([literals(['closed', 'open', 'half-open', 'isolated']), Type.Null()], { description: 'Circuit breaker of calls into the plugin (invoke proxy); every loaded plugin has one, null only before its policies are built' })
}
export const PluginSummary = Type.Object(pluginSummaryProperties, { $id: 'PluginSummary' })
export type PluginSummaryT = Static<typeof PluginSummary>

export const PluginList = Type.Object({ plugins: Type.Array(Type.Ref(PluginSummary)) })

const oneOrMore = (item: ReturnType<typeof Type.String> | ReturnType<typeof literals>, description: string) =>
  Type.Optional(Type.Array(item, { description: `${description}; repeat for several (any of them matches)` }))

export const PluginListQuery = Type.Object({
  capability: oneOrMore(Type.String({ minLength: 1 }), 'Only plugins declaring this capability'),
  tag: oneOrMore(Type.String({ minLength: 1 }), 'Only plugins carrying this tag'),
  status: oneOrMore(literals(STATUS_NAMES), 'Only plugins with this status'),
  q: oneOrMore(Type.String({ minLength: 1 }), 'Only plugins with this text (ignoring case) in their name, description, a capability or a tag')
}, { additionalProperties: false, description: 'Different filters must all match' })

export const PluginResources = Type.Union([Type.Object({
  residentMemoryBytes: Type.Integer({ description: 'Resident memory of the whole process group (bytes; 0 when not running)' }),
  cpuSeconds: Type.Number({ description: 'CPU time (user + system) of every process the plugin has run since the daemon started (seconds)' }),
  sampledAt: Timestamp
}), Type.Null()], { description: 'Latest resource sample (every resources.sampleIntervalMs); null before the first' })

export const HealthStats = Type.Object({
  totalChecks: Type.Integer({ description: 'Probe results retained (rollups of history.rollupRetentionDays, plus results not flushed yet)' }),
  successRate: Type.Number({ description: 'Share of those results that passed (success or warn); 0 without results' }),
  errorRate: Type.Number({ description: 'Share of those results that failed; 0 without results' }),
  avgResponseTimeMs: Type.Number({ description: 'Mean probe duration (milliseconds)' }),
  uptimeMs: Type.Integer({ description: 'Time the current process has been running (milliseconds)' })
}, { $id: 'HealthStats' })

export const PluginDetail = Type.Object({
  ...pluginSummaryProperties,
  resources: PluginResources,
  manifest: Type.Record(Type.String(), Type.Unknown(), { description: 'The manifest with defaults filled in; sensitive config values redacted' }),
  stats: Type.Ref(HealthStats),
  trend: literals(TREND_NAMES, 'Failure rate of the last 5 minutes against the 5 before: more than 10 points higher is degrading, lower improving; stable otherwise or with fewer than 3 results in either window')
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

const NullableNumber = Type.Union([Type.Number(), Type.Null()])
const ProbeResultName = literals(['success', 'warn', 'failure'])

export const PluginHealth = Type.Object({
  status: literals(STATUS_NAMES, 'One-word summary of state and health'),
  state: literals(STATE_NAMES),
  health: literals(HEALTH_NAMES),
  healthy: Type.Boolean({ description: 'status is healthy or degraded' }),
  critical: Type.Boolean(),
  probe: Type.Union([literals(['http', 'tcp', 'exec']), Type.Null()], { description: 'Kind of health check; null without one' }),
  lastCheckTime: Nullable(Timestamp),
  lastHealthyTime: Nullable(Timestamp),
  lastResult: Type.Union([ProbeResultName, Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  failureCount: Type.Integer({ description: 'Consecutive probe failures of the current process' }),
  restartCount: Type.Integer(),
  responseTimeMs: Type.Union([Type.Number(), Type.Null()], { description: 'Duration of the last probe (milliseconds)' })
}, { $id: 'PluginHealth' })

export const HealthReport = Type.Object({
  status: literals(['pass', 'warn', 'fail'], 'fail when the daemon fails or a critical plugin is failed or unhealthy; warn when a plugin meant to run is degraded, unhealthy, restarting, failed or stopped'),
  timestamp: Timestamp,
  plugins: Type.Record(Type.String(), Type.Ref(PluginHealth)),
  summary: Type.Ref(StatusSummary)
}, { $id: 'HealthReport' })

export const PluginHealthResponse = Type.Object({ name: Type.String(), ...PluginHealth.properties })

export const ReadinessQuery = Type.Object({
  verbose: Type.Optional(Type.String({ description: 'Present (any value but false or 0): list every check' })),
  exclude: Type.Optional(Type.Array(Type.String(), { description: 'Skip this check (a plugin name, or daemon:*); repeatable' }))
})

export const ReadinessResponse = Type.Object({
  status: literals(['pass', 'fail']),
  checks: Type.Optional(Type.Array(Type.Object({
    name: Type.String({ description: 'daemon:store-migrated, daemon:startup, daemon:initial-start, or a critical plugin' }),
    status: literals(['pass', 'fail']),
    detail: Type.String()
  })))
})

export const HistoryQuery = Type.Object({
  since: Type.Optional(Type.String({ format: 'date-time', description: 'From this time (default: 24 hours before until)' })),
  until: Type.Optional(Type.String({ format: 'date-time', description: 'Before this time (default: now)' })),
  limit: Type.Integer({ minimum: 1, maximum: 10000, default: 1000, description: 'At most this many items, newest first (default 1000)' }),
  resolution: Type.Union([Type.Literal('raw'), Type.Literal('minute'), Type.Literal('hour')], { default: 'raw', description: 'raw probe results, or minute/hour rollups (default raw)' })
})

export const HistoryResponse = Type.Object({
  plugin: Type.String(),
  resolution: literals(['raw', 'minute', 'hour']),
  checks: Type.Optional(Type.Array(Type.Object({
    at: Timestamp,
    probe: literals(['http', 'tcp', 'exec']),
    phase: literals(['startup', 'regular']),
    result: ProbeResultName,
    durationMs: Type.Number(),
    error: Type.Union([Type.String(), Type.Null()])
  }), { description: 'resolution raw: probe results, newest first' })),
  buckets: Type.Optional(Type.Array(Type.Object({
    at: Timestamp,
    count: Type.Integer(),
    failures: Type.Integer(),
    warnings: Type.Integer(),
    minMs: NullableNumber,
    avgMs: NullableNumber,
    maxMs: NullableNumber
  }), { description: 'resolution minute or hour: rollups, newest first; at is the start of the bucket' }))
})

export const ReloadQuery = Type.Object({
  dryRun: Type.Boolean({ default: false, description: 'Only report what would change (default false)' })
})

export const ReloadResult = Type.Object({
  dryRun: Type.Boolean(),
  added: Type.Array(Type.String(), { description: 'New plugins: loaded, and started when autostart (or their stored desired state) says so' }),
  removed: Type.Array(Type.String(), { description: 'Plugins whose manifest is gone: stopped and unloaded' }),
  changed: Type.Array(Type.String(), { description: 'Plugins whose manifest differs: stopped, swapped, started again when they were meant to run' }),
  unchanged: Type.Array(Type.String()),
  kept: Type.Array(Type.String(), { description: 'Plugins whose manifest is invalid now (see problems): the running version stays' }),
  problems: Type.Array(Type.Ref(ConfigProblem), { description: 'Every manifest not applied, with file, JSON path and reason' }),
  restartRequired: Type.Array(Type.String(), { description: 'Main config keys that changed but take effect only at a daemon restart (everything but plugins and pluginsDir)' })
})

export const RegisterQuery = Type.Object({
  start: Type.Optional(Type.Boolean({ description: "Start the plugin now (default: the manifest's autostart)" }))
})

export const ManifestBody = Type.Object({}, {
  additionalProperties: true,
  description: 'A plugin manifest (schemas/manifest.schema.json), validated like a manifest file: problems answer 400 PLUGVISOR_INVALID_MANIFEST with file, JSON path and reason each'
})

export const ConfigBody = Type.Record(Type.String(), Type.Unknown(), {
  description: 'The whole new config of the plugin, validated by its configSchema; a sensitive value sent as "[redacted]" keeps the current one'
})

export const UnloadResult = Type.Object({
  name: Type.String(),
  source: Type.String({ description: 'The manifest file the plugin came from' }),
  retiredTo: Type.Union([Type.String(), Type.Null()], { description: 'Where that file was renamed to (ignored by the loader); null when it was gone already' })
})

export const errorResponses = {
  400: Type.Ref(ErrorResponse),
  404: Type.Ref(ErrorResponse),
  500: Type.Ref(ErrorResponse)
}

export const CircuitStateName = literals(['closed', 'open', 'half-open', 'isolated'], 'closed: calls pass; open: refused until halfOpenAfterMs elapsed; half-open: the next call is a trial; isolated: held open by an operator until reset')

export const CircuitResponse = Type.Object({
  plugin: Type.String(),
  state: CircuitStateName,
  breaker: literals(['consecutive', 'sampling'], 'consecutive: consecutiveFailures in a row open it; sampling: failureRate within windowMs'),
  failures: Type.Integer({ description: 'consecutive: failed calls in a row; sampling: failed calls in the window' }),
  consecutiveFailures: Type.Union([Type.Integer(), Type.Null()]),
  failureRate: Type.Union([Type.Number(), Type.Null()]),
  windowMs: Type.Union([Type.Integer(), Type.Null()]),
  minimumRps: Type.Union([Type.Number(), Type.Null()]),
  halfOpenAfterMs: Type.Integer(),
  openedAt: Nullable(Timestamp),
  halfOpenAt: Type.Union([Timestamp, Type.Null()], { description: 'When an open circuit lets a trial call through' }),
  lastFailure: Type.Union([Type.String(), Type.Null()], { description: 'Why the last failed call failed' }),
  inFlight: Type.Integer({ description: 'Calls holding a bulkhead slot' }),
  queued: Type.Integer({ description: 'Calls waiting for a bulkhead slot' })
}, { $id: 'CircuitResponse' })

export const InvokeParams = Type.Object({
  name: Type.String({ description: 'Plugin name' }),
  '*': Type.Optional(Type.String({ description: 'Path forwarded to the plugin' }))
})
