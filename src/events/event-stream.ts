// Server-sent events: every transition, health verdict change, restart and hook run of the supervisor, every circuit and fallback change of the invoker, every reload,
// fanned out to the connected clients, with keep-alive comments. Speaks to plain writable
// sinks (an http.ServerResponse in production), so it knows nothing of Fastify.
//
// Backpressure and slow clients: see sse-client.ts (a slow client is disconnected, never sent a
// stream with gaps; EventSource reconnects on its own, then re-reads GET /plugins for the
// current state). At most maxClients clients at once.
import type { EventEmitter } from 'node:events'
import type { SupervisorEvents } from '../supervisor/supervisor.js'
import type { InvokerEvents } from '../invoke/invoker.js'
import type { CircuitEvent, HealthEvent, HookEvent, RestartEvent, TransitionEvent } from '../supervisor/events.js'
import type { ConfigProblem } from '../config/load.js'
import type { SpawnError } from '../supervisor/lifecycle.js'
import type { ReloadOutcome } from '../plugin-changes.js'
import type { FallbackChange, FallbackEvent } from '../invoke/fallback.js'
import type { Static } from '@sinclair/typebox'
import { KEEP_ALIVE, SseClient, type EventSink } from './sse-client.js'

export { KEEP_ALIVE, type EventSink } from './sse-client.js'

export type StreamEventName = 'transition' | 'health' | 'restart' | 'circuit' | 'fallback' | 'config' | 'hook'

/** The `data:` of a `hook` event: one run of a lifecycle hook (the HookEvent shape, `at` as ISO 8601). */
export type HookEventData = Omit<HookEvent, 'at'> & { at: string }

/** The `data:` of every event. `from`/`to` are states (transition), verdicts (health), circuit states (circuit), or null (restart). */
export interface StreamEventData {
  plugin: string
  from: string | null
  to: string | null
  reason: string
  /** ISO 8601 time of the change. */
  at: string
  /** A transition caused by a failed spawn: the system's code (ENOENT, EACCES, ...) and message. */
  error?: SpawnError
}

/** The `data:` of a `config` event: a reload (applied, or refused with `refused` problems) and what started it. */
export interface ConfigEventData {
  trigger: ReloadOutcome['trigger']
  /** The files whose change started it (trigger watch; [] otherwise). */
  files: string[]
  added: string[]
  removed: string[]
  changed: string[]
  /** Config applied in place by the plugins' reload hooks (no restart). */
  reconfigured: string[]
  kept: string[]
  /** Manifests not applied (the running version of each stays). */
  problems: ConfigProblem[]
  /** The main config was invalid: nothing applied, these say why. */
  refused: ConfigProblem[] | null
  at: string
}

/** The supervisor's events the stream relays. */
export type StreamedSupervisor = Pick<EventEmitter<SupervisorEvents>, 'on' | 'off'>

export interface EventStreamOptions {
  supervisor: StreamedSupervisor
  /** Where circuit and fallback changes are published (the invoker). */
  circuits: Pick<EventEmitter<InvokerEvents>, 'on' | 'off'>
  /** Keep-alive comment interval, milliseconds (config `events.keepAliveMs`). */
  keepAliveMs: number
  /** Bytes of events a client's socket has not taken yet, allowed before it is disconnected (config `events.maxBufferedBytes`). */
  maxBufferedBytes: number
  /** Clients at once (config `events.maxClients`). */
  maxClients: number
  /** A client was disconnected for being too slow (called once per client). */
  onSlowClient?: (bufferedBytes: number) => void
}

/**
 * Milliseconds the clients' sockets are corked after an event: the events of that window go to
 * each socket as one write (one system call) instead of one each. With 200 clients every event
 * was 200 writev calls, over 40 % of the daemon's CPU while events flowed.
 */
export const CORK_MS = 20

/** Seconds a client refused for maxClients is told to wait (Retry-After). */
export const FULL_RETRY_AFTER_S = 10

export interface EventStream {
  /** Adds a client: writes the opening comment, then every event. Returns the unsubscribe. */
  subscribe: (sink: EventSink) => () => void
  /** Relays a reload (every one that was not a dry run) as a `config` event. */
  config: (outcome: ReloadOutcome) => void
  clientCount: () => number
  /** Whether maxClients are connected (a new one must be refused). */
  full: () => boolean
  /** Ends every client stream and stops listening (app close). */
  close: () => void
}

/** One event in the text/event-stream format. */
export function formatEvent (event: StreamEventName, data: StreamEventData | ConfigEventData | HookEventData | Static<typeof FallbackEvent>): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

export function createEventStream (opts: EventStreamOptions): EventStream {
  const { supervisor, circuits, maxBufferedBytes } = opts
  const clients = new Map<EventSink, SseClient>()
  let closed = false
  const onSlow = (c: SseClient, bufferedBytes: number): void => {
    clients.delete(c.sink)
    opts.onSlowClient?.(bufferedBytes)
  }
  let corked = false
  const uncork = (): void => {
    corked = false
    for (const c of clients.values()) c.sink.uncork?.()
  }
  const send = (chunk: string, tick = false): void => {
    if (clients.size === 0) return
    if (!corked) {
      corked = true
      for (const c of clients.values()) c.sink.cork?.()
      setTimeout(uncork, CORK_MS).unref()
    }
    for (const c of clients.values()) c.send(chunk, tick)
  }

  // Nothing is formatted while nobody listens: a start of 500 plugins is 1,500 events.
  const onTransition = (e: TransitionEvent): void => { if (clients.size > 0) send(formatEvent('transition', { plugin: e.plugin, from: e.from, to: e.to, reason: e.reason, at: new Date(e.at).toISOString(), ...(e.error ? { error: e.error } : {}) })) }
  const onHealth = (e: HealthEvent): void => { if (clients.size > 0) send(formatEvent('health', { plugin: e.plugin, from: e.from, to: e.to, reason: e.reason, at: new Date(e.at).toISOString() })) }
  const onRestart = (e: RestartEvent): void => { if (clients.size > 0) send(formatEvent('restart', { plugin: e.plugin, from: null, to: null, reason: e.reason, at: new Date(e.at).toISOString() })) }
  const onCircuit = (e: CircuitEvent): void => { if (clients.size > 0) send(formatEvent('circuit', { plugin: e.plugin, from: e.from, to: e.to, reason: e.reason, at: new Date(e.at).toISOString() })) }
  const onHook = (e: HookEvent): void => { if (clients.size > 0) send(formatEvent('hook', { ...e, at: new Date(e.at).toISOString() })) }
  const onFallback = (e: FallbackChange): void => { if (clients.size > 0) send(formatEvent('fallback', { ...e, at: new Date(e.at).toISOString() })) }

  supervisor.on('transition', onTransition)
  supervisor.on('hook', onHook)
  supervisor.on('health', onHealth)
  supervisor.on('restart', onRestart)
  circuits.on('circuit', onCircuit)
  circuits.on('fallback', onFallback)

  const keepAlive = setInterval(() => send(KEEP_ALIVE, true), opts.keepAliveMs)
  keepAlive.unref()

  return {
    subscribe (sink) {
      if (closed) {
        sink.end()
        return () => {}
      }
      const c = new SseClient(sink, { maxBufferedBytes, onSlow })
      clients.set(sink, c)
      return () => {
        c.drop()
        clients.delete(sink)
      }
    },
    config (o) {
      if (clients.size === 0) return
      const r = o.result
      send(formatEvent('config', {
        trigger: o.trigger,
        files: o.files,
        added: r?.added ?? [],
        removed: r?.removed ?? [],
        changed: r?.changed ?? [],
        reconfigured: r?.reconfigured ?? [],
        kept: r?.kept ?? [],
        problems: r?.problems ?? [],
        refused: o.refused ?? null,
        at: new Date(o.at).toISOString()
      }))
    },
    clientCount: () => clients.size,
    full: () => clients.size >= opts.maxClients,
    close () {
      if (closed) return
      closed = true
      clearInterval(keepAlive)
      supervisor.off('transition', onTransition)
      supervisor.off('hook', onHook)
      supervisor.off('health', onHealth)
      supervisor.off('restart', onRestart)
      circuits.off('circuit', onCircuit)
      circuits.off('fallback', onFallback)
      for (const c of clients.values()) c.end()
      clients.clear()
    }
  }
}
