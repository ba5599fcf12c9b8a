// GET /plugins/:name/logs?follow=true: each client gets the last lines of one plugin, then every
// line it prints, as server-sent events (`event: line`, `data:` one LogLine as JSON), with
// keep-alive comments and the backpressure of GET /events (sse-client.ts). Knows nothing of Fastify.
import type { EventEmitter } from 'node:events'
import type { SupervisorEvents } from '../supervisor/supervisor.js'
import { logLineBody, type LogLine } from '../process/log-ring.js'
import { KEEP_ALIVE, SseClient, type EventSink } from './sse-client.js'

export interface LogFollowOptions {
  /** Where lines come from; `has` tells an unload (the plugin is gone) from a manifest swap. */
  supervisor: Pick<EventEmitter<SupervisorEvents>, 'on' | 'off'> & { has: (name: string) => boolean }
  /** Keep-alive comment interval (milliseconds; config events.keepAliveMs). */
  keepAliveMs: number
  /** Bytes a client's socket has not taken yet, allowed before it is disconnected (config events.maxBufferedBytes). */
  maxBufferedBytes: number
  /** Follow clients at once, over all plugins (config events.maxClients). */
  maxClients: number
  onSlowClient?: (plugin: string, bufferedBytes: number) => void
}

export interface LogFollower {
  /**
   * Sends the lines before the stream (oldest first), then what was printed since subscribe()
   * that they do not already hold. Until then, new lines wait.
   */
  start: (before: LogLine[]) => void
  /** The client left: forget it. */
  close: () => void
}

export interface LogFollow {
  /** Adds a client of one plugin's output; lines printed from now on are kept for it until start(). */
  subscribe: (plugin: string, sink: EventSink) => LogFollower
  clientCount: () => number
  full: () => boolean
  /** Ends every stream (daemon shutdown). */
  close: () => void
}

export function formatLineEvent (l: LogLine): string {
  return `event: line\ndata: ${JSON.stringify(logLineBody(l))}\n\n`
}

const same = (a: LogLine, b: LogLine): boolean => a.at === b.at && a.stream === b.stream && a.line === b.line

/** How many of `held`'s first lines are `before`'s last ones (read after they were printed). */
function overlap (before: LogLine[], held: LogLine[]): number {
  for (let k = Math.min(before.length, held.length); k > 0; k--) {
    let all = true
    for (let i = 0; i < k && all; i++) all = same(before[before.length - k + i], held[i])
    if (all) return k
  }
  return 0
}

interface Follow {
  client: SseClient
  plugin: string
  /** Lines printed before start(); undefined once started. */
  held: LogLine[] | undefined
}

export function createLogFollow (opts: LogFollowOptions): LogFollow {
  const { supervisor } = opts
  const byPlugin = new Map<string, Set<Follow>>()
  let count = 0
  let closed = false

  const remove = (f: Follow): void => {
    const set = byPlugin.get(f.plugin)
    if (set === undefined || !set.delete(f)) return
    count--
    if (set.size === 0) byPlugin.delete(f.plugin)
  }
  const onOutput = (o: SupervisorEvents['output'][0]): void => {
    const set = byPlugin.get(o.plugin)
    if (set === undefined) return
    let chunk: string | undefined
    for (const f of set) {
      if (f.held !== undefined) { f.held.push({ at: o.at, stream: o.stream, line: o.line }); continue }
      chunk ??= formatLineEvent(o)
      f.client.send(chunk)
    }
  }
  // A plugin that was unloaded prints nothing more: its streams end (a manifest swap keeps them).
  const onUnloaded = (name: string): void => {
    if (supervisor.has(name)) return
    for (const f of byPlugin.get(name) ?? []) {
      f.client.end()
      remove(f)
    }
  }
  supervisor.on('output', onOutput)
  supervisor.on('unloaded', onUnloaded)
  const keepAlive = setInterval(() => {
    for (const set of byPlugin.values()) for (const f of set) f.client.send(KEEP_ALIVE, true)
  }, opts.keepAliveMs)
  keepAlive.unref()

  return {
    subscribe (plugin, sink) {
      const f: Follow = { plugin, held: [], client: undefined as unknown as SseClient }
      f.client = new SseClient(sink, {
        maxBufferedBytes: opts.maxBufferedBytes,
        onSlow: (_c, bytes) => {
          remove(f)
          opts.onSlowClient?.(plugin, bytes)
        }
      })
      if (closed) {
        f.client.end()
        return { start: () => {}, close: () => {} }
      }
      let set = byPlugin.get(plugin)
      if (set === undefined) byPlugin.set(plugin, set = new Set())
      set.add(f)
      count++
      return {
        start (before) {
          const held = f.held ?? []
          f.held = undefined
          const lines = [...before, ...held.slice(overlap(before, held))]
          if (lines.length > 0) f.client.send(lines.map(formatLineEvent).join(''))
        },
        close () {
          f.client.drop()
          remove(f)
        }
      }
    },
    clientCount: () => count,
    full: () => count >= opts.maxClients,
    close () {
      if (closed) return
      closed = true
      clearInterval(keepAlive)
      supervisor.off('output', onOutput)
      supervisor.off('unloaded', onUnloaded)
      for (const set of byPlugin.values()) for (const f of set) f.client.end()
      byPlugin.clear()
      count = 0
    }
  }
}
