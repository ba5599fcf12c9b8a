// The one place where every config and manifest field, its unit and its default are declared.
// The JSON Schemas published in schemas/ and the README reference table are generated from here.
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { IDLE_BACKOFF } from '../resources/resource-sampler.js'

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

/** What answers instead of a plugin: another plugin, or a fixed answer (the manifest's resilience.fallback, or an operator's override). */
export const FallbackTarget = Type.Union([
  Type.Object({ plugin: PluginName }, { additionalProperties: false }),
  Type.Object({ status: Type.Integer({ minimum: 100, maximum: 599 }), body: Type.Optional(Type.Unknown()) }, { additionalProperties: false })
], { description: 'When a call fails, and while the fallback is active: { plugin: other } forwards to another plugin, or { status, body } answers' })
export type FallbackTarget = Static<typeof FallbackTarget>

export const Resilience = Type.Object({
  timeoutMs: ms('Timeout of one call into the plugin', 5000, 1),
  retry: Type.Object({
    maxAttempts: Type.Integer({ minimum: 0, default: 2, description: 'Retries of idempotent calls (default 2)' }),
    initialDelayMs: ms('Delay before the first retry', 100)
  }, { additionalProperties: false, default: {} }),
  circuitBreaker: Type.Object({
    consecutiveFailures: Type.Optional(Type.Integer({ minimum: 1, description: 'Consecutive failures that open the circuit (5 when failureRate is not set)' })),
    failureRate: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'Failed share that opens the circuit (instead of consecutiveFailures): within windowMs, or of the last windowSize calls when windowSize is set (0.5 when only windowSize is set)' })),
    windowSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'Count window: the failed share of the last windowSize calls is judged (calls; not set: a time window of windowMs)' })),
    minimumCalls: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'Calls needed in the count window before failureRate counts (calls, default windowSize; at most windowSize)' })),
    windowMs: ms('Sampling window of failureRate when windowSize is not set', 10000, 1),
    minimumRps: Type.Number({ minimum: 0, default: 5, description: 'Calls per second needed before failureRate counts (default 5)' }),
    halfOpenAfterMs: ms('Time an open circuit waits before a trial call', 30000),
    successThreshold: Type.Integer({ minimum: 1, maximum: 1000, default: 1, description: 'Trial calls that must succeed in a row before a half-open circuit closes; one failure opens it again (calls, default 1)' })
  }, { additionalProperties: false, default: {}, description: 'consecutiveFailures, failureRate within windowMs (time window), or failureRate over windowSize calls (count window)' }),
  bulkhead: Type.Object({
    maxConcurrent: Type.Integer({ minimum: 1, default: 50, description: 'Calls in flight (default 50)' }),
    maxQueued: Type.Integer({ minimum: 0, default: 100, description: 'Calls waiting (default 100)' })
  }, { additionalProperties: false, default: {} }),
  fallback: Type.Optional(FallbackTarget)
}, { additionalProperties: false, default: {} })

const HTTP_HOOK_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const

/** A request to the plugin on 127.0.0.1:$PORT; a 2xx answer is a success. */
const hookHttp = (defaultMethod: typeof HTTP_HOOK_METHODS[number], what: string) => Type.Object({
  path: Type.String({ pattern: '^/', description: `Path requested on 127.0.0.1 at the plugin's port${what}` }),
  method: Type.Union(HTTP_HOOK_METHODS.map((m) => Type.Literal(m)), { default: defaultMethod, description: `HTTP method (default ${defaultMethod})` }),
  headers: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Extra request headers' }))
}, { additionalProperties: false, description: 'An HTTP request to the plugin; a 2xx answer is a success' })

const HookExec = Type.Object({
  command: Type.String({ minLength: 1, description: 'Program run without a shell, in the plugin cwd and environment (PLUGVISOR_CONFIG_FILE included)' }),
  args: Type.Array(Type.String(), { default: [], description: 'Arguments' })
}, { additionalProperties: false, description: 'A program; exit code 0 is a success; its process group is killed at timeoutMs' })

const lifecycleHook = (description: string, timeoutMs: number) => Type.Object({
  http: Type.Optional(hookHttp('GET', '')),
  exec: Type.Optional(HookExec),
  timeoutMs: ms('Longest the hook may take; then it counts as failed', timeoutMs, 1)
}, { additionalProperties: false, description: `${description}: exactly one of http, exec` })

/** Signals a reload hook may send to the plugin's main process. */
export const RELOAD_SIGNALS = ['SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const

export const Hooks = Type.Object({
  postStart: Type.Optional(lifecycleHook('Runs once the process is up (after the startup probe passed, when there is one); a failure counts as a failed start: the plugin is stopped and restarted through the backoff (reason hook)', 10000)),
  preStop: Type.Optional(lifecycleHook('Runs before the stop signal of every stop (operator, restart, config change, daemon shutdown), to drain; its time counts against stop.timeoutMs and it never holds a stop longer', 5000)),
  reload: Type.Optional(Type.Object({
    signal: Type.Optional(Type.Union(RELOAD_SIGNALS.map((s) => Type.Literal(s)), { description: 'Signal sent to the main process once the new config is in PLUGVISOR_CONFIG_FILE' })),
    http: Type.Optional(hookHttp('PUT', '; the new config is the JSON body')),
    timeoutMs: ms('Longest the http reload may take; then the old config is restored', 5000, 1)
  }, { additionalProperties: false, description: 'A change of config alone reaches the running plugin without a restart: written to PLUGVISOR_CONFIG_FILE, then this signal or request (exactly one); a failure restores the old config' }))
}, { additionalProperties: false, description: 'Lifecycle hooks; a plugin without them is started, stopped and restarted on a config change as usual' })

export type Hooks = Static<typeof Hooks>
export type LifecycleHook = NonNullable<Hooks['postStart']>
export type ReloadHook = NonNullable<Hooks['reload']>

// A capability or tag: one lower-case word, matched exactly by the ?capability= and ?tag= filters of GET /plugins.
const Label = Type.String({ pattern: '^[a-z0-9][a-z0-9._:/-]{0,63}$' })

/** Who wrote a plugin, what it can do, what it needs: shown in the API, filtered on by GET /plugins. */
const PluginMetadataFields = {
  author: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Who wrote or maintains the plugin (a name, an e-mail address); shown in the API' })),
  homepage: Type.Optional(Type.String({ pattern: '^https?://', maxLength: 2048, description: 'http(s) address of its documentation or source; shown in the API' })),
  capabilities: Type.Array(Label, { default: [], uniqueItems: true, description: 'What the plugin can do, one lower-case word each (letters, digits, . _ : / -; at most 64 characters); GET /plugins?capability= filters on them' }),
  tags: Type.Array(Label, { default: [], uniqueItems: true, description: 'Free labels, same form as capabilities; GET /plugins?tag= filters on them' }),
  requires: Type.Optional(Type.Object({
    plugvisor: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: "Range of plugvisor versions the plugin works with, in npm's semver syntax (e.g. '>=0.1 <2'); a daemon outside it rejects the manifest" }))
  }, { additionalProperties: false, description: 'What the plugin needs to run' }))
}

export const Manifest = Type.Object({
  name: PluginName,
  version: Type.Optional(Type.String({ maxLength: 64, description: 'Shown in the API' })),
  description: Type.Optional(Type.String({ maxLength: 1024, description: 'Shown in the API' })),
  ...PluginMetadataFields,
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
  watch: Type.Optional(Type.Object({
    paths: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Globs relative to cwd (*, **, ?, {a,b}); a change to a matching file restarts the plugin (reason watch) while it runs' }),
    debounceMs: ms('Changes within this time of each other are one restart', 300)
  }, { additionalProperties: false, description: 'Restart the plugin when one of its files changes (not while it is stopped)' })),
  hooks: Type.Optional(Hooks),
  sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$', description: 'Hex SHA-256 of the resolved executable, checked before every spawn; a mismatch leaves the plugin failed (reason checksum), never started' })),
  configSchema: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'JSON Schema for config; properties marked sensitive: true are redacted' })),
  config: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: 'Passed to the plugin as PLUGVISOR_CONFIG (JSON) and in the file named by PLUGVISOR_CONFIG_FILE' })
}, { additionalProperties: false, $id: 'https://plugvisor.dev/schemas/manifest.schema.json', title: 'plugvisor plugin manifest' })

export type Manifest = Static<typeof Manifest>
export type HealthCheck = Static<typeof HealthCheck>
export type RestartPolicy = Static<typeof RestartPolicy>
export type StopPolicy = Static<typeof StopPolicy>

/** How the daemon writes its own log: auto picks pretty on a terminal, json otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const

export const LogLevel = Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info', description: 'pino log level of the daemon and of plugin output lines (env PLUGVISOR_LOG_LEVEL)' })

export const MainConfig = Type.Object({
  server: Type.Object({
    host: Type.String({ default: '127.0.0.1', description: 'Listen address (env PLUGVISOR_HOST)' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 7070, description: 'Listen port (env PLUGVISOR_PORT)' }),
    allowedHosts: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'While listening on loopback, Host names (without port) accepted besides localhost, *.localhost, loopback addresses and the listen address; any other Host is refused 403 PLUGVISOR_HOST_NOT_ALLOWED, against DNS rebinding (default none)' }),
    trustProxy: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Addresses or CIDRs of proxies in front of the daemon: from these peers X-Forwarded-For names the client, which then is the rate-limit key and the audit log address (default none: the peer is the client)' })
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
    max: Type.Integer({ minimum: 1, default: 300, description: 'Management calls one client may make per window (default 300): a token holder counts by its token name, everyone else by address; probes, /metrics, /docs and the invoke proxy are not limited' }),
    windowMs: ms('The rate-limit window', 60000, 1000),
    exemptLoopback: Type.Boolean({ default: false, description: 'Clients on 127.0.0.0/8 and ::1 are not limited; off by default, as behind a same-host proxy or sidecar every client is loopback (default false)' })
  }, { additionalProperties: false, default: {} }),
  pluginPolicy: Type.Object({
    // eslint-disable-next-line no-template-curly-in-string -- the text names the template syntax
    allowEnv: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'Environment variables a manifest registered over the API (POST /plugins, PUT /plugins/:name/config) may read through ${VAR}: names or globs (PLUGIN_*); a reference to another is a 400 naming it (default none). Manifests on disk and inline read any' }),
    allowedCommands: Type.Optional(Type.Array(Type.String({ minLength: 1, pattern: '^/' }), { description: 'Programs manifests may run (command and exec probe), as absolute paths or globs (/usr/bin/*, /opt/plugins/**); a bare command is looked up on PATH first (default: any program)' })),
    allowedCwd: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: "Folders a manifest's cwd must be in (the folder itself or below it), relative to the config file's folder (default: anywhere)" }))
  }, { additionalProperties: false, default: {}, description: 'Limits on what manifests may do; every manifest, from a file, inline or over the API, is checked' }),
  log: Type.Object({
    level: LogLevel,
    format: Type.Union(LOG_FORMATS.map((f) => Type.Literal(f)), { default: 'auto', description: 'The daemon\'s own log on stdout: json (one JSON object a line), pretty (time, level, message, fields; for people), auto: pretty when stdout is a terminal, else json (default auto; env PLUGVISOR_LOG_FORMAT)' })
  }, { additionalProperties: false, default: {} }),
  logs: Type.Object({
    maxFileMb: Type.Number({ exclusiveMinimum: 0, default: 10, description: 'A plugin\'s log file <dataDir>/logs/<name>.log is rotated once a write would take it past this size (megabytes, default 10)' }),
    keepFiles: Type.Integer({ minimum: 0, maximum: 1000, default: 5, description: 'Rotated files kept per plugin, <name>.log.1 (newest) to <name>.log.N; the oldest beyond is deleted (default 5)' })
  }, { additionalProperties: false, default: {}, description: 'Files of what plugins print, one per plugin, kept across daemon restarts' }),
  resources: Type.Object({
    sampleIntervalMs: ms(`Resident memory and CPU time of every plugin process group are read from /proc this often (${IDLE_BACKOFF} times as rarely while nothing changed and no plugin has limits.maxMemoryMb); limits.maxMemoryMb needs two samples in a row over it`, 5000, 10)
  }, { additionalProperties: false, default: {} }),
  watch: Type.Object({
    enabled: Type.Boolean({ default: true, description: 'Watch the main config file and pluginsDir and reload on a change, as SIGHUP does (default true)' }),
    debounceMs: ms('Changes within this time of each other are one reload', 300)
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

/** The stop policy of a manifest that says nothing (from the schema's defaults): for processes no loaded manifest names. */
// Read off the schema's properties (one level is all StopPolicy has): TypeBox's Value.Default would
// load its value and compiler modules (~1.5 MB of live heap) for this one object.
export const DEFAULT_STOP = Object.fromEntries(Object.entries(StopPolicy.properties).map(([k, p]) => [k, p.default])) as StopPolicy
