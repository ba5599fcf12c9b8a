// Resident memory and CPU time of every plugin's whole process group, sampled from /proc on an
// interval, and the memory limit: over `limits.maxMemoryMb` on two samples in a row restarts the
// plugin (reason memory) through the supervisor's backoff. One reading of /proc per tick, grouped
// by process group id, whatever the number of plugins: the stat file of each member of the
// plugins' groups, of their leaders and of the processes created since the tick before; all of
// /proc about once a minute, at a tick that follows a quiet one (group-scan.ts). A stat file
// costs 15-20 µs of CPU, so while no plugin has a memory limit and a tick finds nothing changed,
// the next one waits IDLE_BACKOFF times as long; any change, or a plugin starting or stopping,
// brings the interval back.
import type { EventEmitter } from 'node:events'
import type { SupervisorEvents } from '../supervisor/supervisor.js'
import { systemClock, type Clock } from '../clock.js'
import type { ProcessIdentity } from '../process/runner.js'
import { sysconf, type ProcStat } from '../process/proc.js'
import { createGroupScan, type WatchedGroups } from './group-scan.js'

/** What one tick reads: at least every process of the watched groups, with its group, state, rss and CPU ticks. */
export type ProcessSource = (watch: WatchedGroups) => Pick<ProcStat, 'pid' | 'pgid' | 'state' | 'startTicks' | 'rssPages' | 'utimeTicks' | 'stimeTicks'>[]

/** The part of the supervisor the sampler needs (a fake in unit tests). */
export interface SampledSupervisor extends Pick<EventEmitter<SupervisorEvents>, 'on' | 'off'> {
  names: () => string[]
  processOf: (name: string) => ProcessIdentity | undefined
  manifest: (name: string) => { limits: { maxMemoryMb?: number } }
  memoryExceeded: (name: string) => void
}

export interface PluginResources {
  /** Resident memory of the live processes of the group, bytes (0 when not running). */
  residentMemoryBytes: number
  /**
   * CPU time (user + system) of every process the plugin has run since the daemon started,
   * seconds: monotonic, so it can be a Prometheus counter across plugin restarts.
   */
  cpuSeconds: number
  /** When it was read (epoch ms). */
  sampledAt: number
}

export interface ResourceSamplerOptions {
  supervisor: SampledSupervisor
  /** Tick interval, milliseconds (config `resources.sampleIntervalMs`). */
  intervalMs: number
  source?: ProcessSource
  clock?: Clock
  /** Bytes per rss page and CPU ticks per second; from getconf by default. */
  pageSize?: number
  ticksPerSecond?: number
  /** A tick that threw (the interval keeps going). */
  onError?: (err: unknown) => void
}

/** How many times resources.sampleIntervalMs a quiet sampler waits at most between ticks. */
export const IDLE_BACKOFF = 12

export interface ResourceSampler {
  /** The latest sample of a plugin; undefined before its first one. */
  usage: (name: string) => PluginResources | undefined
  /** One tick now (the timer calls this; tests call it directly). */
  sample: () => void
  /** The wait before the next tick, ms: intervalMs, or IDLE_BACKOFF times that while nothing changes. */
  nextDelayMs: () => number
  start: () => void
  stop: () => void
}

interface Tracked {
  /** The process instance the per-pid figures belong to: `${pid}:${startTicks}`. */
  instance: string | undefined
  /** Last CPU ticks seen per member pid of the current instance: members that exit keep theirs. */
  memberTicks: Map<number, number>
  /** CPU ticks of earlier instances of the plugin. */
  previousTicks: number
  /** Consecutive samples over the memory limit. */
  overLimit: number
  /** The last tick's rss pages and CPU ticks of the group: unchanged figures let the sampler slow down. */
  lastRssPages: number
  lastTicks: number
  usage: PluginResources | undefined
}

export function createResourceSampler (opts: ResourceSamplerOptions): ResourceSampler {
  const { supervisor, intervalMs } = opts
  const scan = opts.source === undefined ? createGroupScan({ fullScanEveryMs: intervalMs * IDLE_BACKOFF }) : undefined
  const source = opts.source ?? scan!
  const clock = opts.clock ?? systemClock
  const pageSize = opts.pageSize ?? sysconf().pageSize
  const ticksPerSecond = opts.ticksPerSecond ?? sysconf().ticksPerSecond
  const tracked = new Map<string, Tracked>()
  let timer: NodeJS.Timeout | undefined
  let delay = intervalMs

  const onUnloaded = (name: string): void => { tracked.delete(name) }
  supervisor.on('unloaded', onUnloaded)
  // A process started or ended: sample at the configured pace again, from now.
  const onTransition = (): void => {
    if (delay === intervalMs) return
    delay = intervalMs
    if (timer) schedule()
  }
  supervisor.on('transition', onTransition)

  const sumTicks = (t: Tracked): number => {
    let s = t.previousTicks
    for (const v of t.memberTicks.values()) s += v
    return s
  }

  function sample (): void {
    const now = clock.now()
    let changed = false
    let limited = false
    // pgid -> plugin, for the plugins that have a process now.
    const byGroup = new Map<number, { name: string, t: Tracked, rssPages: number }>()
    const leaders: number[] = []
    for (const name of supervisor.names()) {
      let t = tracked.get(name)
      if (!t) {
        t = { instance: undefined, memberTicks: new Map(), previousTicks: 0, overLimit: 0, usage: undefined, lastRssPages: -1, lastTicks: -1 }
        tracked.set(name, t)
        changed = true
      }
      const id = supervisor.processOf(name)
      const instance = id ? `${id.pid}:${id.startTicks ?? ''}` : undefined
      if (instance !== t.instance) {
        // A new process (or none): the old one's CPU time is kept, its memory count starts over.
        t.previousTicks = sumTicks(t)
        t.memberTicks = new Map()
        t.instance = instance
        t.overLimit = 0
        changed = true
      }
      if (id) {
        byGroup.set(id.pgid, { name, t, rssPages: 0 })
        leaders.push(id.pid)
      } else {
        t.usage = { residentMemoryBytes: 0, cpuSeconds: sumTicks(t) / ticksPerSecond, sampledAt: now }
      }
    }
    // Called with no group too: the source keeps track of what was created since.
    for (const p of source({ groups: byGroup, leaders, quiet: delay !== intervalMs })) {
      const g = byGroup.get(p.pgid)
      if (g === undefined) continue
      // Zombies hold no memory and their CPU time was counted while they ran.
      if (p.state === 'Z' || p.state === 'X') continue
      g.rssPages += p.rssPages
      g.t.memberTicks.set(p.pid, p.utimeTicks + p.stimeTicks)
    }
    for (const { name, t, rssPages } of byGroup.values()) {
      const residentMemoryBytes = rssPages * pageSize
      const ticks = sumTicks(t)
      if (rssPages !== t.lastRssPages || ticks !== t.lastTicks) changed = true
      t.lastRssPages = rssPages
      t.lastTicks = ticks
      t.usage = { residentMemoryBytes, cpuSeconds: ticks / ticksPerSecond, sampledAt: now }
      const limitMb = supervisor.manifest(name).limits.maxMemoryMb
      if (limitMb !== undefined) limited = true
      if (limitMb === undefined || residentMemoryBytes <= limitMb * 1024 * 1024) {
        t.overLimit = 0
        continue
      }
      t.overLimit++
      if (t.overLimit >= 2) {
        // Counted again from zero for the next process (the instance changes on restart).
        t.overLimit = 0
        supervisor.memoryExceeded(name)
      }
    }
    // Memory limits are counted in samples: they keep the configured pace.
    delay = changed || limited ? intervalMs : intervalMs * IDLE_BACKOFF
  }

  const tick = (): void => {
    try {
      sample()
    } catch (err) {
      opts.onError?.(err)
    }
    schedule()
  }
  function schedule (): void {
    if (timer) clearTimeout(timer)
    timer = setTimeout(tick, delay)
    timer.unref()
  }

  return {
    usage: (name) => tracked.get(name)?.usage,
    sample,
    nextDelayMs: () => delay,
    start () {
      if (timer) return
      schedule()
    },
    stop () {
      if (timer) clearTimeout(timer)
      timer = undefined
      scan?.close()
      supervisor.off('unloaded', onUnloaded)
      supervisor.off('transition', onTransition)
    }
  }
}
