// The one place where every config and manifest field, its unit and its default are declared.
// The JSON Schemas published in schemas/ and the README reference table are generated from here.
import { Type, type Static, type TSchema } from '@sinclair/typebox'

const ms = (description: string, def: number, minimum = 0) =>
  Type.Integer({ minimum, default: def, description: `${description} (milliseconds, default ${def})` })

// status, health, start, stop, restart: static routes under /plugins; liveness, readiness: under /health.
export const RESERVED_NAMES = ['status', 'health', 'start', 'stop', 'restart', 'liveness', 'readiness'] as const

/** Roles of bearer tokens: viewer may read, admin may do everything. */
export const ROLES = ['viewer', 'admin'] as const

export const PluginName = Type.String({
  pattern: '^[a-z0-9][a-z0-9_-]{0,62}$',
  not: { enum: [...RESERVED_NAMES] },
  description: `Unique plugin name; lower-case letters, digits, '-' and '_', at most 63 characters; not one of ${RESERVED_NAMES.join(', ')}`
})

export const StopSignal = Type.Union(
  ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGKILL'].map((s) => Type.Literal(s)),
  { default: 'SIGTERM', description: 'Signal sent to the process group to ask it to stop (default SIGTERM)' }
)

const PortNumber = Type.Integer({ minimum: 1, maximum: 65535 })

export const HttpProbe = Type.Object({
  path: Type.String({ default: '/health', pattern: '^/', description: 'Path requested with GET (default /health)' }),
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: "Port to probe; defaults to the plugin's port" })),
  headers: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Extra request headers' }))
}, { additionalProperties: false, description: 'HTTP GET on 127.0.0.1; 2xx/3xx passes; application/health+json status warn => degraded, fail => failure' })

export const TcpProbe = Type.Object({
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: "Port to connect to; defaults to the plugin's port" }))
}, { additionalProperties: false, description: 'TCP connect to 127.0.0.1; a connection within timeoutMs passes' })

export const ExecProbe = Type.Object({
  command: Type.String({ minLength: 1, description: 'Program run without a shell, in the plugin cwd and environment' }),
  args: Type.Array(Type.String(), { default: [], description: 'Arguments' })
}, { additionalProperties: false, description: 'Exit code 0 passes; killed at timeoutMs' })

export const StartupProbe = Type.Object({
  failureThreshold: Type.Integer({ minimum: 1, default: 30, description: 'Failures of the startup probe before the plugin is unhealthy (default 30)' }),
  intervalMs: ms('Interval of the startup probe', 1000, 1)
}, { additionalProperties: false, description: 'Optional startup probe: the regular probe waits until this passes once' })

export const HealthCheck = Type.Object({
  http: Type.Optional(HttpProbe),
  tcp: Type.Optional(TcpProbe),
  exec: Type.Optional(ExecProbe),
  intervalMs: ms('Time between probes', 10000, 1),
  timeoutMs: ms('Probe timeout', 1000, 1),
  initialDelayMs: ms('Delay after the process starts before the first probe', 0),
  failureThreshold: Type.Integer({ minimum: 1, default: 3, description: 'Consecutive failures that make the plugin unhealthy (default 3)' }),
  successThreshold: Type.Integer({ minimum: 1, default: 1, description: 'Consecutive successes that make it healthy again (default 1)' }),
  startup: Type.Optional(StartupProbe)
}, { additionalProperties: false, description: 'Kubernetes-style probe: exactly one of http, tcp, exec' })

export const RestartPolicy = Type.Object({
  policy: Type.Union([Type.Literal('always'), Type.Literal('on-failure'), Type.Literal('never')], { default: 'always', description: 'always | on-failure (restart unless exit code 0) | never (default always)' }),
  initialDelayMs: ms('Delay before the first automatic restart', 1000),
  multiplier: Type.Number({ minimum: 1, default: 2, description: 'Each consecutive restart waits this many times longer (default 2)' }),
  maxDelayMs: ms('Cap on the restart delay', 300000),
  jitter: Type.Number({ minimum: 0, maximum: 1, default: 0.1, description: 'Random ± fraction of each delay (default 0.1)' }),
  resetAfterMs: ms('Running (and healthy, when probed) this long resets the delay and the crash window', 600000),
  maxRestarts: Type.Integer({ minimum: 0, default: 10, description: 'Automatic restarts allowed within windowMs; the crash after the last one leaves the plugin failed (default 10)' }),
  windowMs: ms('Window in which restarts are counted', 600000, 1)
}, { additionalProperties: false, default: {} })

export const StopPolicy = Type.Object({
  signal: StopSignal,
  timeoutMs: ms('Time the whole process group gets to exit before SIGKILL', 10000)
}, { additionalProperties: false, default: {} })

export const Limits = Type.Object({
  maxMemoryMb: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Resident memory of the process group in MiB; over it on two consecutive samples restarts the plugin (no limit by default)' }))
}, { additionalProperties: false, default: {} })

export const Resilience = Type.Object({
  timeoutMs: ms('Timeout of one call into the plugin', 5000, 1),
  retry: Type.Object({
    maxAttempts: Type.Integer({ minimum: 0, default: 2, description: 'Retries of idempotent calls (default 2)' }),
    initialDelayMs: ms('Delay before the first retry', 100)
  }, { additionalProperties: false, default: {} }),
  circuitBreaker: Type.Object({
    consecutiveFailures: Type.Optional(Type.Integer({ minimum: 1, description: 'Consecutive failures that open the circuit (5 when failureRate is not set)' })),
    failureRate: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'Failure ratio within windowMs that opens the circuit (instead of consecutiveFailures)' })),
    windowMs: ms('Sampling window of failureRate', 10000, 1),
    minimumRps: Type.Number({ minimum: 0, default: 5, description: 'Calls per second needed before failureRate counts (default 5)' }),
    halfOpenAfterMs: ms('Time an open circuit waits before a trial call', 30000)
  }, { additionalProperties: false, default: {}, description: 'Either consecutiveFailures or failureRate' }),
  bulkhead: Type.Object({
    maxConcurrent: Type.Integer({ minimum: 1, default: 50, description: 'Calls in flight (default 50)' }),
    maxQueued: Type.Integer({ minimum: 0, default: 100, description: 'Calls waiting (default 100)' })
  }, { additionalProperties: false, default: {} }),
  fallback: Type.Optional(Type.Union([
    Type.Object({ plugin: PluginName }, { additionalProperties: false }),
    Type.Object({ status: Type.Integer({ minimum: 100, maximum: 599 }), body: Type.Optional(Type.Unknown()) }, { additionalProperties: false })
  ], { description: 'When a call fails: { plugin: other } forwards to another plugin, or { status, body } answers' }))
}, { additionalProperties: false, default: {} })

export const Manifest = Type.Object({
  name: PluginName,
  version: Type.Optional(Type.String({ maxLength: 64, description: 'Shown in the API' })),
  description: Type.Optional(Type.String({ maxLength: 1024, description: 'Shown in the API' })),
  command: Type.String({ minLength: 1, description: 'Program to run, without a shell (looked up on PATH)' }),
  args: Type.Array(Type.String(), { default: [], description: 'Arguments, passed as they are (no shell expansion)' }),
  cwd: Type.String({ default: '.', description: "Working directory, relative to the manifest's folder (inline manifests: the main config's folder)" }),
  env: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String(), { default: {}, description: 'Environment of the plugin; the daemon passes on only PATH, HOME, LANG and TZ besides' }),
  autostart: Type.Boolean({ default: true, description: 'Start when the daemon starts, unless an operator stopped it (default true)' }),
  critical: Type.Boolean({ default: false, description: 'Readiness of the daemon depends on this plugin (default false)' }),
  dependsOn: Type.Array(PluginName, { default: [], uniqueItems: true, description: 'Started after these, stopped before them' }),
  port: Type.Optional(Type.Union([Type.Literal('auto'), PortNumber], { description: "'auto' (a free loopback port), a number, or omitted; passed as PORT" })),
  healthCheck: Type.Optional(HealthCheck),
  restart: RestartPolicy,
  stop: StopPolicy,
  limits: Limits,
  resilience: Resilience,
  configSchema: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'JSON Schema for config; properties marked sensitive: true are redacted' })),
  config: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'Passed to the plugin as PLUGVISOR_CONFIG (JSON)' })
}, { additionalProperties: false, $id: 'https://plugvisor.dev/schemas/manifest.schema.json', title: 'plugvisor plugin manifest' })

export type Manifest = Static<typeof Manifest>
export type HealthCheck = Static<typeof HealthCheck>
export type RestartPolicy = Static<typeof RestartPolicy>
export type StopPolicy = Static<typeof StopPolicy>

export const LogLevel = Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info', description: 'pino log level of the daemon and of plugin output lines (env PLUGVISOR_LOG_LEVEL)' })

export const MainConfig = Type.Object({
  server: Type.Object({
    host: Type.String({ default: '127.0.0.1', description: 'Listen address (env PLUGVISOR_HOST)' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 7070, description: 'Listen port (env PLUGVISOR_PORT)' })
  }, { additionalProperties: false, default: {} }),
  dataDir: Type.String({ default: './data', description: "Folder of the SQLite file, relative to the config file's folder (env PLUGVISOR_DATA_DIR)" }),
  pluginsDir: Type.String({ default: './plugins.d', description: "Folder of manifest files (*.yaml, *.yml, *.json), relative to the config file's folder" }),
  plugins: Type.Array(Type.Unknown(), { default: [], description: 'Inline manifests, same schema as files in pluginsDir' }),
  restartBudget: Type.Object({
    burst: Type.Integer({ minimum: 1, default: 20, description: 'Automatic restarts the daemon may do at once (default 20)' }),
    perSecond: Type.Number({ exclusiveMinimum: 0, default: 2, description: 'Refill rate of the restart budget, restarts per second (default 2)' })
  }, { additionalProperties: false, default: {} }),
  history: Type.Object({
    rawRetentionHours: Type.Number({ exclusiveMinimum: 0, default: 24, description: 'Raw probe results are kept this long (hours, default 24)' }),
    rollupRetentionDays: Type.Number({ exclusiveMinimum: 0, default: 30, description: 'Minute and hour rollups are kept this long (days, default 30)' }),
    flushIntervalMs: ms('Probe results are written in one transaction this often', 1000, 10)
  }, { additionalProperties: false, default: {} }),
  auth: Type.Object({
    mode: Type.Union([Type.Literal('none'), Type.Literal('tokens')], { default: 'none', description: 'none: the API is open (refused off loopback unless written out); tokens: bearer tokens with roles' }),
    tokens: Type.Array(Type.Object({
      name: Type.String({ minLength: 1, description: 'Who holds the token (for logs)' }),
      role: Type.Union(ROLES.map((r) => Type.Literal(r)), { description: 'viewer: GET only; admin: everything' }),
      tokenEnv: Type.Optional(Type.String({ minLength: 1, description: 'Environment variable holding the token' })),
      tokenFile: Type.Optional(Type.String({ minLength: 1, description: "File holding the token, relative to the config file's folder" }))
    }, { additionalProperties: false }), { default: [], description: '{ name, role: viewer|admin, tokenEnv or tokenFile }; at least 16 characters each' }),
    openProbes: Type.Boolean({ default: true, description: 'GET /health, /health/liveness, /health/readiness, /health/:plugin need no token' }),
    openMetrics: Type.Boolean({ default: true, description: 'GET /metrics needs no token' })
  }, { additionalProperties: false, default: {} }),
  rateLimit: Type.Object({
    max: Type.Integer({ minimum: 1, default: 300, description: 'Management calls one client address may make per window (default 300); probes, /metrics, /docs and the invoke proxy are not limited' }),
    windowMs: ms('The rate-limit window', 60000, 1000),
    exemptLoopback: Type.Boolean({ default: true, description: 'Clients on 127.0.0.0/8 and ::1 (the CLI, a local agent) are not limited (default true)' })
  }, { additionalProperties: false, default: {} }),
  log: Type.Object({
    level: LogLevel
  }, { additionalProperties: false, default: {} }),
  resources: Type.Object({
    sampleIntervalMs: ms('Resident memory and CPU time of every plugin process group are read from /proc this often; limits.maxMemoryMb needs two samples in a row over it', 5000, 10)
  }, { additionalProperties: false, default: {} }),
  events: Type.Object({
    keepAliveMs: ms('GET /events sends a keep-alive comment this often', 15000, 10),
    maxBufferedBytes: Type.Integer({ minimum: 1024, maximum: 1073741824, default: 262144, description: 'A GET /events client with more than this many bytes of events not yet taken by its socket is disconnected (bytes, default 262144)' }),
    maxClients: Type.Integer({ minimum: 1, maximum: 100000, default: 256, description: 'GET /events clients at once; one more is refused with 503 PLUGVISOR_EVENT_STREAM_FULL and Retry-After (default 256)' })
  }, { additionalProperties: false, default: {} })
}, { additionalProperties: false, $id: 'https://plugvisor.dev/schemas/config.schema.json', title: 'plugvisor main config' })

export type MainConfig = Static<typeof MainConfig>

/** Schemas published in schemas/ (regenerated by `npm run openapi`, checked by a test). */
export const publishedSchemas: Record<string, TSchema> = {
  'manifest.schema.json': Manifest,
  'config.schema.json': MainConfig
}
