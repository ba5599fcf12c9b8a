// /plugins: lifecycle API. Thin: take the supervisor, call it, shape the answer.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type Static } from '@sinclair/typebox'
import { errors } from '../src/errors.js'
import { timeOf } from '../src/shapes.js'
import { HookEvent, PluginSummary, pluginSummaryProperties, type PluginSummary as Summary } from '../src/supervisor/events.js'
import { StateEvent } from '../src/store/state-store.js'
import { HockeypuckStatus, hockeypuckStatus } from '../src/hosts/hockeypuck.js'
import {
  BulkQuery, ConfigBody, ErrorResponse, EventsQuery, LogsQuery, ManifestBody, NotPersistedResponse, PluginDetail, PluginList, PluginListItem, PluginListQuery, PluginListSelected, PluginListWithResources, PluginParams, PLUGIN_LIST_FIELDS,
  RegisterQuery, WaitQuery, errorResponses
} from './schemas.js'
import { matchesFilter } from '../src/plugin-filter.js'
import { ListAnswer, type Item, type ListRow } from './list-answer.js'
import { redactManifest, redactedConfig, shownField } from '../src/config/redact.js'
import { UnloadResult } from '../src/plugin-changes.js'
import { LogLineBody, logLineBody } from '../src/process/log-ring.js'
import { recentLines } from '../src/process/log-files.js'
import { FULL_RETRY_AFTER_S } from '../src/events/event-stream.js'
import { openEventStream } from './event-stream-response.js'
import type { FallbackStateName } from '../src/invoke/fallback.js'
import type { PluginResources as PluginResourcesSample } from '../src/resources/resource-sampler.js'

const Op = ['start', 'stop', 'restart'] as const

type PluginListField = typeof PLUGIN_LIST_FIELDS[number]
/** The named fields of an object, in that order. */
function pick<T extends object> (o: T, fields: readonly string[]): Record<string, unknown> & { name: string } {
  const out: Record<string, unknown> = {}
  for (const f of fields) out[f] = (o as Record<string, unknown>)[f]
  return out as Record<string, unknown> & { name: string }
}

/** Who asked, as the audit log names them: hooks an operation runs are audited with it. */
const actorOf = (req: FastifyRequest): string => req.principal?.name ?? 'anonymous'

const plugins: FastifyPluginAsyncTypebox = async (app) => {
  const { supervisor, changes, invoker } = app.daemon

  /** `?wait=healthy`: bounded wait until healthy or degraded (state settled otherwise). */
  const waitHealthy = (name: string, timeoutMs: number): Promise<Summary> =>
    supervisor.waitFor(name, (s) => s.status === 'healthy' || s.status === 'degraded', timeoutMs, 'healthy')

  // One scan samples every plugin at the same time: its ISO form is made once, not once per plugin.
  let sampledMs: number | undefined
  let sampledIso = ''
  const isoOf = (ms: number): string => {
    if (ms !== sampledMs) { sampledMs = ms; sampledIso = new Date(ms).toISOString() }
    return sampledIso
  }
  /** A resource sample as the API shows it. */
  const shownResources = (usage: PluginResourcesSample | undefined) =>
    usage ? { residentMemoryBytes: usage.residentMemoryBytes, cpuSeconds: usage.cpuSeconds, sampledAt: isoOf(usage.sampledAt) } : null
  /** The latest resource sample of a plugin, as the API shows it. */
  const resourcesOf = (name: string) => shownResources(app.daemon.resources.usage(name))

  // GET /plugins: a row is what one plugin's item is made of, each part the same object while it
  // did not change (the supervisor's list view, the sampler's latest sample), so its JSON is kept
  // between requests (routes/list-answer.ts): one for every field, and one per field selection
  // asked for lately (?field; a few, the oldest dropped). A part the answer does not show is left
  // out of the row: a resource sample changes nothing in `plugvisor status`'s selection.
  type Row = ListRow & { summary: Summary, from: readonly [Summary, PluginResourcesSample | undefined, FallbackStateName | undefined] }
  interface View { answer: ListAnswer<Row>, resources: boolean, fallback: boolean }
  const itemOf = ({ from: [summary, usage, fallback] }: Row): Item => ({ ...summary, resources: shownResources(usage), fallback })
  const uptimeOf = (row: Row): number => row.summary.uptimeMs
  const viewOf = (fields: readonly PluginListField[] | undefined, reply: FastifyReply): View => ({
    answer: new ListAnswer(
      fields === undefined ? itemOf : (row: Row) => pick(itemOf(row), fields),
      reply.compileSerializationSchema(fields === undefined ? PluginListItem : Type.Pick(PluginListItem, fields)) as (item: Item) => string,
      'uptimeMs',
      uptimeOf
    ),
    resources: fields === undefined || fields.includes('resources'),
    fallback: fields === undefined || fields.includes('fallback')
  })
  let everyField: View | undefined
  const selections = new Map<string, View>()
  const MAX_SELECTIONS = 8
  const selectionOf = (asked: PluginListField[], reply: FastifyReply): View => {
    const fields = PLUGIN_LIST_FIELDS.filter((f) => f === 'name' || asked.includes(f))
    const key = fields.join(',')
    let s = selections.get(key)
    if (s !== undefined) {
      selections.delete(key)
    } else {
      s = viewOf(fields, reply)
      if (selections.size >= MAX_SELECTIONS) selections.delete(selections.keys().next().value!)
    }
    selections.set(key, s)
    return s
  }

  app.get('/plugins', {
    schema: {
      tags: ['plugins'],
      summary: 'Every plugin with its state, health, status and latest resource sample; ?capability, ?tag, ?status, ?q filter (each repeatable: any value of one filter, all filters given); ?field (repeatable) keeps only those fields',
      querystring: PluginListQuery,
      response: { 200: Type.Union([PluginListWithResources, PluginListSelected], { description: 'Every field of each plugin; with ?field, its name and the fields named' }), ...errorResponses }
    }
  }, async (req, reply) => {
    const { field, ...filter } = req.query
    const view = field === undefined ? (everyField ??= viewOf(undefined, reply)) : selectionOf(field, reply)
    const all = supervisor.listView()
    const rows: Row[] = []
    for (const summary of all) {
      if (!matchesFilter(summary, filter)) continue
      const { name } = summary
      const usage = view.resources ? app.daemon.resources.usage(name) : undefined
      rows.push({ name, summary, from: [summary, usage, view.fallback ? invoker.fallbackState(name) : undefined] })
    }
    // The JSON is written already: Fastify sends a Buffer as it is (the schema above is what it holds).
    const json = view.answer.write(rows, rows.length === all.length)
    // 'finish': the whole answer was handed to the socket (an answer cut off never releases).
    reply.raw.once('finish', () => view.answer.release(json))
    return reply.type('application/json; charset=utf-8').send(json as unknown as Static<typeof PluginListWithResources>)
  })

  app.get('/plugins/status', {
    schema: {
      tags: ['plugins', 'compatibility'],
      summary: "Status overview in the shape of the Hockeypuck plugin host's management API",
      response: { 200: Type.Ref(HockeypuckStatus) }
    }
  }, async () => hockeypuckStatus(supervisor.list(), (n) => shownField(supervisor.manifest(n), 'command') as string, app.daemon.progress.initialStartDone))

  for (const op of Op) {
    app.post(`/plugins/${op}`, {
      schema: {
        tags: ['plugins'],
        summary: `${op[0].toUpperCase()}${op.slice(1)} several plugins (?plugin=NAME, repeatable, or ?all=true), keeping dependency order`,
        querystring: BulkQuery,
        response: { 200: PluginList, ...errorResponses, 503: NotPersistedResponse }
      }
    }, async (req) => {
      const { plugin, all, wait, timeoutMs } = req.query
      if (!all && (plugin === undefined || plugin.length === 0)) throw new errors.Validation('name plugins with ?plugin=NAME (repeatable) or ask for ?all=true')
      const names = all ? supervisor.names() : [...new Set(plugin!)]
      const run = op === 'start' ? supervisor.startMany(names, actorOf(req)) : op === 'stop' ? supervisor.stopMany(names, actorOf(req)) : supervisor.restartMany(names, actorOf(req))
      let result = await run
      if (wait === 'healthy' && op !== 'stop') result = await Promise.all(names.map((n) => waitHealthy(n, timeoutMs)))
      return { plugins: result }
    })

    app.post(`/plugins/:name/${op}`, {
      schema: {
        tags: ['plugins'],
        summary: `${op[0].toUpperCase()}${op.slice(1)} one plugin; answers once the action took effect`,
        params: PluginParams,
        querystring: WaitQuery,
        response: { 200: Type.Ref(PluginSummary), ...errorResponses, 503: NotPersistedResponse, 504: Type.Ref(ErrorResponse) }
      }
    }, async (req) => {
      const { name } = req.params
      const summary = await supervisor[op](name, actorOf(req))
      if (req.query.wait === 'healthy' && op !== 'stop') return waitHealthy(name, req.query.timeoutMs)
      return summary
    })
  }

  app.get('/plugins/:name', {
    schema: {
      tags: ['plugins'],
      summary: 'One plugin: summary, resource usage, manifest (sensitive config redacted), probe stats, call statistics and the trend of probes and calls',
      params: PluginParams,
      response: {
        200: PluginDetail,
        ...errorResponses
      }
    }
  }, async (req) => {
    const { name } = req.params
    const summary = supervisor.summary(name)
    const resources = resourcesOf(name)
    const { trend, ...stats } = app.daemon.healthHistory.stats(name, (now) => invoker.callWindows(name, now))
    return { ...summary, resources, fallback: invoker.fallbackState(name), manifest: redactManifest(supervisor.manifest(name)), stats: { ...stats, uptimeMs: summary.uptimeMs }, calls: invoker.calls(name), trend }
  })

  // ---- changing the set of plugins at run time ----

  // 403: the wrong role, a change from another site (PLUGVISOR_CROSS_ORIGIN), a Host not this daemon's (PLUGVISOR_HOST_NOT_ALLOWED).
  const changeErrors = { 400: Type.Ref(ErrorResponse), 403: Type.Ref(ErrorResponse), 404: Type.Ref(ErrorResponse), 409: Type.Ref(ErrorResponse), 500: Type.Ref(ErrorResponse), 503: NotPersistedResponse }

  app.post('/plugins', {
    schema: {
      tags: ['plugins'],
      summary: 'Register a plugin: the manifest is validated like a file, written to <pluginsDir>/<name>.json, loaded and started (?start, default its autostart)',
      querystring: RegisterQuery,
      body: ManifestBody,
      response: { 201: Type.Ref(PluginSummary), ...changeErrors }
    }
  }, async (req, reply) => {
    const summary = await changes.register(req.body, { start: req.query.start, actor: actorOf(req) })
    return reply.code(201).header('location', `/plugins/${summary.name}`).send(summary)
  })

  app.delete('/plugins/:name', {
    schema: {
      tags: ['plugins'],
      summary: 'Unload a plugin: stop it, remove it, rename its manifest file to <file>.deleted (409 while another plugin depends on it, or for an inline manifest)',
      params: PluginParams,
      response: { 200: UnloadResult, ...changeErrors }
    }
  }, async (req) => changes.unregister(req.params.name, actorOf(req)))

  app.put('/plugins/:name/config', {
    schema: {
      tags: ['plugins'],
      summary: "Replace a plugin's config: validated by its configSchema, written to its manifest file, applied in place by the plugin's reload hook when it has one and runs (same process; a failed hook restores the old config and answers 502 PLUGVISOR_HOOK_FAILED), else by restarting the plugin (sensitive values redacted in the answer)",
      params: PluginParams,
      body: ConfigBody,
      response: {
        200: Type.Object({ ...pluginSummaryProperties, config: Type.Unknown({ description: 'The config now in effect, sensitive values redacted' }) }),
        ...changeErrors,
        502: Type.Ref(ErrorResponse, { description: "PLUGVISOR_HOOK_FAILED: the reload hook failed or timed out (the message carries the plugin's answer); the old config is back in place, on file and in PLUGVISOR_CONFIG_FILE" })
      }
    }
  }, async (req) => {
    const { name } = req.params
    const summary = await changes.setConfig(name, req.body, actorOf(req))
    return { ...summary, config: redactedConfig(supervisor.manifest(name)) }
  })

  app.get('/plugins/:name/events', {
    schema: {
      tags: ['plugins'],
      summary: 'State transitions and restarts, newest first, with reason, exit code and signal; and the runs of its lifecycle hooks (hooks), newest first',
      params: PluginParams,
      querystring: EventsQuery,
      response: { 200: Type.Object({ plugin: Type.String(), events: Type.Array(StateEvent), hooks: Type.Array(Type.Ref(HookEvent)) }), ...errorResponses }
    }
  }, async (req) => {
    const { name } = req.params
    const since = req.query.since !== undefined ? timeOf(req.query.since) : undefined
    const events = supervisor.events(name, { limit: req.query.limit, since }).map((e) => ({ ...e, at: new Date(e.at).toISOString() }))
    const hooks = supervisor.hookEvents(name, { limit: req.query.limit, since }).map(({ id, ...e }) => ({ ...e, at: new Date(e.at).toISOString() }))
    return { plugin: name, events, hooks }
  })

  app.get('/plugins/:name/logs', {
    schema: {
      tags: ['plugins'],
      summary: 'Last lines of stdout and stderr, oldest first (1000 kept in memory, each cut at 8 KiB; older ones from <dataDir>/logs/<name>.log and its rotated files); ?follow=true: a text/event-stream of them, then every new line',
      params: PluginParams,
      querystring: LogsQuery,
      response: {
        200: {
          description: 'JSON { plugin, lines }; with follow=true an endless text/event-stream: `event: line`, `data:` one LogLine as JSON per line, keep-alive comments every events.keepAliveMs; ends when the plugin is unloaded or the daemon shuts down',
          content: {
            'application/json': { schema: Type.Object({ plugin: Type.String(), lines: Type.Array(Type.Ref(LogLineBody)) }) },
            'text/event-stream': { schema: Type.String() }
          }
        },
        ...errorResponses,
        503: Type.Ref(ErrorResponse, { description: `follow=true while events.maxClients clients follow logs already: PLUGVISOR_EVENT_STREAM_FULL, with Retry-After: ${FULL_RETRY_AFTER_S}` })
      }
    }
  }, async (req, reply) => {
    const { name } = req.params
    const { tail, follow } = req.query
    const ring = supervisor.logs(name, tail)
    if (!follow) {
      const lines = await recentLines(ring, tail, app.daemon.logFiles, name)
      return { plugin: name, lines: lines.map(logLineBody) }
    }
    const { logFollow } = app.daemon
    const res = openEventStream(req, reply, logFollow, 'log follow')
    // Subscribed before the files are read: a line printed meanwhile is held, not lost.
    const follower = logFollow.subscribe(name, res)
    res.on('close', follower.close)
    follower.start(await recentLines(ring, tail, app.daemon.logFiles, name))
    return reply
  })
}

export default plugins
