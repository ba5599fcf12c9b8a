// The shapes only HTTP has: parameters, querystrings, bodies, the error answer, and answers
// composed of the domain's shapes (declared once by their owners; openapi.yaml is generated from
// these).
import { Type, type TSchema } from '@sinclair/typebox'
import { STATUS_NAMES } from '../src/supervisor/lifecycle.js'
import { PluginName as PluginNameSchema } from '../src/config/schema.js'
import { TREND_NAMES } from '../src/health/trend.js'
import { Timestamp, oneOf } from '../src/shapes.js'
import { PluginSummary, pluginSummaryProperties } from '../src/supervisor/events.js'
import { PluginHealth, ReadinessCheck } from '../src/health/health-report.js'
import { HealthStats, RESOLUTIONS, RawCheck, RollupBucket } from '../src/health/health-history.js'
import { CallStats } from '../src/invoke/call-stats.js'
import { FallbackStateField } from '../src/invoke/fallback.js'
import { ErrorResponse } from '../src/plugins/error-handler.js'

export { ErrorResponse }

export const PluginList = Type.Object({ plugins: Type.Array(Type.Ref(PluginSummary)) })

const oneOrMore = <T extends TSchema>(item: T, description: string) =>
  Type.Optional(Type.Array(item, { description: `${description}; repeat for several (any of them matches)` }))

export const PluginResources = Type.Union([Type.Object({
  residentMemoryBytes: Type.Integer({ description: 'Resident memory of the whole process group (bytes; 0 when not running)' }),
  cpuSeconds: Type.Number({ description: 'CPU time (user + system) of every process the plugin has run since the daemon started (seconds)' }),
  sampledAt: Timestamp
}), Type.Null()], { description: 'Latest resource sample (every resources.sampleIntervalMs); null before the first' })

const pluginListItemProperties = { ...pluginSummaryProperties, resources: PluginResources, fallback: FallbackStateField }
/** One plugin of GET /plugins: its summary, latest resource sample (what `pm2 list` shows) and who answers its calls. */
export const PluginListItem = Type.Object(pluginListItemProperties)
/** The fields of a plugin GET /plugins?field= can ask for, in the order the answer writes them. */
export const PLUGIN_LIST_FIELDS = Object.keys(pluginListItemProperties) as Array<keyof typeof pluginListItemProperties>

export const PluginListQuery = Type.Object({
  capability: oneOrMore(Type.String({ minLength: 1 }), 'Only plugins declaring this capability'),
  tag: oneOrMore(Type.String({ minLength: 1 }), 'Only plugins carrying this tag'),
  status: oneOrMore(oneOf(STATUS_NAMES), 'Only plugins with this status'),
  q: oneOrMore(Type.String({ minLength: 1 }), 'Only plugins with this text (ignoring case) in their name, description, a capability or a tag'),
  field: Type.Optional(Type.Array(oneOf(PLUGIN_LIST_FIELDS), { description: 'Only this field of each plugin (its name is always written); repeat for several. Without it, every field' }))
}, { additionalProperties: false, description: 'Different filters must all match' })

/** GET /plugins: every field of each plugin. */
export const PluginListWithResources = Type.Object({ plugins: Type.Array(PluginListItem) })

/** GET /plugins?field=...: each plugin's name and the fields asked for. */
export const PluginListSelected = Type.Object({
  plugins: Type.Array(Type.Composite([Type.Pick(PluginListItem, ['name']), Type.Partial(Type.Omit(PluginListItem, ['name']))]))
})

export const PluginDetail = Type.Object({
  ...pluginSummaryProperties,
  resources: PluginResources,
  fallback: FallbackStateField,
  manifest: Type.Record(Type.String(), Type.Unknown(), { description: 'The manifest with defaults filled in; sensitive config values redacted' }),
  stats: Type.Ref(HealthStats),
  calls: Type.Ref(CallStats),
  trend: oneOf(TREND_NAMES, 'Probes and calls of the last 5 minutes against the 5 before: a failure share more than 10 points higher, or an average latency at least 1.5 times and 5 ms higher, is degrading; the reverse improving (when nothing degrades); stable otherwise, or with fewer than 3 probe results / 10 calls in either window')
})

/** The operation was done but a desired state it leaves could not be saved (a full disk). */
export const NotPersistedResponse = Type.Ref(ErrorResponse, { description: 'PLUGVISOR_STATE_NOT_PERSISTED: done, but the desired state could not be saved (written again once the store takes writes; readiness fails until then)' })

export const PluginParams = Type.Object({ name: Type.String({ description: 'Plugin name' }) })

export const WaitQuery = Type.Object({
  wait: Type.Optional(oneOf(['healthy'], 'Wait (bounded by timeoutMs) until the plugin is healthy or degraded')),
  timeoutMs: Type.Integer({ minimum: 1, maximum: 600000, default: 30000, description: 'Bound of ?wait (milliseconds, default 30000)' })
})

export const BulkQuery = Type.Object({
  plugin: Type.Optional(Type.Array(PluginNameSchema, { description: 'Plugin name; repeat for several' })),
  all: Type.Optional(Type.Boolean({ description: 'Every loaded plugin' })),
  wait: Type.Optional(oneOf(['healthy'])),
  timeoutMs: Type.Integer({ minimum: 1, maximum: 600000, default: 30000 })
})

export const EventsQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  since: Type.Optional(Type.String({ format: 'date-time', description: 'Only events at or after this time' }))
})

export const LogsQuery = Type.Object({
  tail: Type.Integer({ minimum: 0, maximum: 1000, default: 100, description: 'Last N lines (default 100, at most 1000); from the log files when the daemon has fewer in memory. 0: none (with follow=true: only the lines printed from now on, like tail -n 0 -f)' }),
  follow: Type.Boolean({ default: false, description: 'true: a text/event-stream of the last `tail` lines, then every new line as it is printed' })
})

export const PluginHealthResponse = Type.Object({ name: Type.String(), ...PluginHealth.properties })

export const ReadinessQuery = Type.Object({
  verbose: Type.Optional(Type.String({ description: 'Present (any value but false or 0): list every check' })),
  exclude: Type.Optional(Type.Array(Type.String(), { description: 'Skip this check (a plugin name, or daemon:*); repeatable' }))
})

export const ReadinessResponse = Type.Object({
  status: oneOf(['pass', 'fail']),
  checks: Type.Optional(Type.Array(ReadinessCheck))
})

export const HistoryQuery = Type.Object({
  since: Type.Optional(Type.String({ format: 'date-time', description: 'From this time (default: 24 hours before until)' })),
  until: Type.Optional(Type.String({ format: 'date-time', description: 'Before this time (default: now)' })),
  limit: Type.Integer({ minimum: 1, maximum: 10000, default: 1000, description: 'At most this many items, newest first (default 1000)' }),
  resolution: Type.Union([Type.Literal('raw'), Type.Literal('minute'), Type.Literal('hour')], { default: 'raw', description: 'raw probe results, or minute/hour rollups (default raw)' })
})

export const HistoryResponse = Type.Object({
  plugin: Type.String(),
  resolution: oneOf(RESOLUTIONS),
  checks: Type.Optional(Type.Array(RawCheck, { description: 'resolution raw: probe results, newest first' })),
  buckets: Type.Optional(Type.Array(RollupBucket, { description: 'resolution minute or hour: rollups, newest first; at is the start of the bucket' }))
})

export const ReloadQuery = Type.Object({
  dryRun: Type.Boolean({ default: false, description: 'Only report what would change (default false)' })
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

export const errorResponses = {
  400: Type.Ref(ErrorResponse),
  404: Type.Ref(ErrorResponse),
  500: Type.Ref(ErrorResponse)
}

export const InvokeParams = Type.Object({
  name: Type.String({ description: 'Plugin name' }),
  '*': Type.Optional(Type.String({ description: 'Path forwarded to the plugin' }))
})
