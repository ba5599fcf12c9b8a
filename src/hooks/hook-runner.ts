// Running one lifecycle hook of a plugin: an HTTP request to its port, a program, or a signal to
// its main process. Every run is bounded by its timeout and answers an outcome with a reason a
// plugin author can act on; it never throws. Programs are real child processes in a process
// group of their own, killed as a group at their timeout (and by killAll when the daemon must
// exit at once).
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import type { LifecycleHook, ReloadHook } from '../config/schema.js'
import { BINDING_RETRY_MS } from '../health/health-monitor.js'
import { signalGroup } from '../process/proc.js'
import { LoopbackClient, request, type AnswerBody } from '../loopback-http.js'

export const HOOK_NAMES = ['postStart', 'preStop', 'reload'] as const
export type HookName = typeof HOOK_NAMES[number]

/** cancelled: the process the hook was for ended first (postStart only). */
export const HOOK_OUTCOMES = ['success', 'failure', 'timeout', 'cancelled'] as const
export type HookOutcome = typeof HOOK_OUTCOMES[number]

export const HOOK_KINDS = ['http', 'exec', 'signal'] as const
export type HookKind = typeof HOOK_KINDS[number]

/** What a hook is sent to: the plugin's process, port, folder and environment. */
export interface HookTarget {
  pid: number | undefined
  port: number | undefined
  cwd: string
  /** The plugin's own environment (instance marker included): an exec hook runs with it. */
  env: Record<string, string>
}

export interface HookResult {
  kind: HookKind
  outcome: HookOutcome
  durationMs: number
  /** What happened, for the event, the log and an error answer. */
  reason: string
}

/** A hook as the manifest declares it, with the JSON body of an http reload. */
export type HookSpec = (LifecycleHook | ReloadHook) & { body?: string }

/** Of a plugin's answer or a program's output, this much goes into the reason (characters). */
const ANSWER_CHARS = 300

export function hookKind (spec: HookSpec): HookKind {
  if (spec.http) return 'http'
  if ('signal' in spec && spec.signal) return 'signal'
  return 'exec'
}

/** What the hook calls, as the audit log shows it: `PUT /config`, `SIGHUP`, `bin/drain --now`. */
export function hookTarget (spec: HookSpec): string {
  if (spec.http) return `${spec.http.method} ${spec.http.path}`
  if ('signal' in spec && spec.signal) return spec.signal
  const exec = (spec as LifecycleHook).exec!
  return [exec.command, ...exec.args].join(' ')
}

/** The whole of an answer's body as text; `signal` aborting stops the reading (and the connection). */
function readText (body: AnswerBody, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const onAbort = (): void => { body.destroy(signal.reason as Error) }
    signal.addEventListener('abort', onAbort, { once: true })
    body.on('data', (c: Buffer) => chunks.push(c))
    body.once('end', () => { signal.removeEventListener('abort', onAbort); resolve(Buffer.concat(chunks).toString('utf8')) })
    body.once('error', (err) => { signal.removeEventListener('abort', onAbort); reject(err) })
  })
}

const clip = (text: string): string => {
  const t = text.trim().replace(/\s+/g, ' ')
  return t.length > ANSWER_CHARS ? `${t.slice(0, ANSWER_CHARS)}…` : t
}

export class HookRunner {
  /** Process groups of exec hooks still running. */
  readonly #groups = new Set<number>()
  /** HTTP hooks' connections (kept alive a while for the next hook of the plugin). */
  readonly #client = new LoopbackClient()

  /**
   * Runs the hook; `signal` cancels it (the process it was for is gone). Resolves with the
   * outcome; never rejects.
   */
  async run (spec: HookSpec, target: HookTarget, signal?: AbortSignal): Promise<HookResult> {
    const kind = hookKind(spec)
    const started = performance.now()
    let r: { outcome: HookOutcome, reason: string }
    try {
      r = kind === 'http'
        ? await this.#http(spec, target, signal)
        : kind === 'signal'
          ? this.#signal((spec as ReloadHook).signal!, target)
          : await this.#exec((spec as LifecycleHook).exec!, spec.timeoutMs, target, signal)
    } catch (err) {
      r = { outcome: 'failure', reason: (err as Error).message }
    }
    return { kind, ...r, durationMs: Math.round((performance.now() - started) * 1000) / 1000 }
  }

  /** SIGKILL to every exec hook still running (the daemon exits at once). */
  killAll (): void {
    for (const pgid of this.#groups) signalGroup(pgid, 'SIGKILL')
  }

  #signal (sig: NonNullable<ReloadHook['signal']>, target: HookTarget): { outcome: HookOutcome, reason: string } {
    if (target.pid === undefined) return { outcome: 'failure', reason: 'the plugin has no process to signal' }
    try {
      process.kill(target.pid, sig)
    } catch (err) {
      return { outcome: 'failure', reason: `could not send ${sig} to process ${target.pid}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }
    }
    return { outcome: 'success', reason: `sent ${sig} to process ${target.pid}` }
  }

  async #http (spec: HookSpec, target: HookTarget, cancel: AbortSignal | undefined): Promise<{ outcome: HookOutcome, reason: string }> {
    const http = spec.http!
    const what = `${http.method} ${http.path}`
    if (target.port === undefined) return { outcome: 'failure', reason: `${what}: the plugin has no port` }
    const timeout = AbortSignal.timeout(spec.timeoutMs)
    const signal = cancel ? AbortSignal.any([timeout, cancel]) : timeout
    const cancelled = (): boolean => cancel?.aborted === true
    const headers: Record<string, string> = { ...http.headers }
    if (spec.body !== undefined) headers['content-type'] = 'application/json'
    const body = spec.body === undefined ? undefined : Buffer.from(spec.body)
    for (;;) {
      try {
        // The daemon's own loopback client, as the calls and probes: undici is not loaded by the
        // daemon at all (its index is ~4.6 MB of live heap, and its WebAssembly parser is compiled
        // by V8's optimizing tier on first use, a ~35 MB transient).
        const res = await request(this.#client, target.port, { method: http.method, path: http.path, headers, body }, signal, spec.timeoutMs)
        const text = Buffer.isBuffer(res.body) ? res.body.toString('utf8') : await readText(res.body, signal)
        if (res.statusCode >= 200 && res.statusCode < 300) return { outcome: 'success', reason: `${what}: ${res.statusCode}` }
        return { outcome: 'failure', reason: `${what}: HTTP ${res.statusCode}${text.trim() ? `: ${clip(text)}` : ''}` }
      } catch (err) {
        if (cancelled()) return { outcome: 'cancelled', reason: `${what}: cancelled, the process ended` }
        if (timeout.aborted) return { outcome: 'timeout', reason: `${what}: no answer within ${spec.timeoutMs} ms` }
        // The plugin may still be binding its port (a postStart right after the spawn): try again.
        if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED' || (err as Error).message.includes('ECONNREFUSED')) {
          await new Promise((resolve) => setTimeout(resolve, BINDING_RETRY_MS))
          if (!signal.aborted) continue
          if (cancelled()) return { outcome: 'cancelled', reason: `${what}: cancelled, the process ended` }
          return { outcome: 'timeout', reason: `${what}: port ${target.port} refused connections for ${spec.timeoutMs} ms` }
        }
        return { outcome: 'failure', reason: `${what}: ${(err as Error).message}` }
      }
    }
  }

  #exec (exec: NonNullable<LifecycleHook['exec']>, timeoutMs: number, target: HookTarget, cancel: AbortSignal | undefined): Promise<{ outcome: HookOutcome, reason: string }> {
    const what = exec.command
    return new Promise((resolve) => {
      // A group of its own: a timeout kills whatever the hook started too.
      const child = spawn(exec.command, exec.args, { cwd: target.cwd, env: target.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, shell: false })
      const pgid = child.pid
      if (pgid !== undefined) this.#groups.add(pgid)
      let output = ''
      const keep = (chunk: Buffer): void => { output = (output + chunk.toString('utf8')).slice(-4 * ANSWER_CHARS) }
      child.stdout.on('data', keep)
      child.stderr.on('data', keep)
      let ended: HookOutcome | undefined
      const kill = (why: HookOutcome): void => {
        if (ended !== undefined) return
        ended = why
        if (pgid !== undefined) signalGroup(pgid, 'SIGKILL')
      }
      const timer = setTimeout(() => kill('timeout'), timeoutMs)
      const onCancel = (): void => kill('cancelled')
      cancel?.addEventListener('abort', onCancel, { once: true })
      const finish = (r: { outcome: HookOutcome, reason: string }): void => {
        clearTimeout(timer)
        cancel?.removeEventListener('abort', onCancel)
        if (pgid !== undefined) this.#groups.delete(pgid)
        // Pipes a left-over grandchild holds open must not keep the daemon's handles.
        child.stdout.destroy()
        child.stderr.destroy()
        resolve(r)
      }
      const said = (): string => output.trim() ? `; it printed: ${clip(output.split('\n').filter((l) => l.trim()).slice(-3).join(' | '))}` : ''
      child.once('error', (err) => finish({ outcome: 'failure', reason: `cannot run ${what}: ${err.message}` }))
      child.once('exit', (code, sig) => {
        if (ended === 'timeout') return finish({ outcome: 'timeout', reason: `${what} did not finish within ${timeoutMs} ms (its process group was killed)${said()}` })
        if (ended === 'cancelled') return finish({ outcome: 'cancelled', reason: `${what}: cancelled, the process ended` })
        if (code === 0) return finish({ outcome: 'success', reason: `${what} exited with code 0` })
        finish({ outcome: 'failure', reason: `${what} ${sig ? `was killed by ${sig}` : `exited with code ${code}`}${said()}` })
      })
    })
  }
}
