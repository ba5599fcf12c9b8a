// What check-plugin reports: one result per check, in a fixed order, as a table for people or
// as JSON for a plugin's CI.
import type { BenchResult } from './cases.js'

export const CHECK_STATUSES = ['pass', 'fail', 'skip'] as const
export type CheckStatus = typeof CHECK_STATUSES[number]

/** The checks in report order; cases (`case:NAME`) come between reload-hook and bench. */
export const CHECK_TITLES = {
  manifest: 'the manifest is valid',
  starts: 'it starts and stays up',
  listens: 'it listens on PORT',
  health: 'its health check passes',
  'health-json': 'its health+json body is well-formed',
  config: 'it received PLUGVISOR_CONFIG',
  'reload-hook': 'its reload hook works',
  bench: 'benchmark',
  stop: 'it stops on its stop signal',
  sigkill: 'it comes back after a SIGKILL'
} as const
export type CheckId = keyof typeof CHECK_TITLES

export interface CheckResult {
  /** A CheckId, or `case:NAME` for a request of --cases. */
  id: string
  title: string
  status: CheckStatus
  /** Why it passed, failed or was skipped, in words a plugin author can act on. */
  reason: string
}

export interface CheckReport {
  manifest: string
  plugin: string | null
  /** Every check passed or was skipped. */
  ok: boolean
  /** The run was cut short by a signal; every process it started was stopped. */
  interrupted: boolean
  checks: CheckResult[]
  bench: BenchResult | null
}

const LABEL: Record<CheckStatus, string> = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' }

export function formatReport (r: CheckReport): string {
  const width = Math.max(...r.checks.map((c) => c.title.length))
  const lines = [`check-plugin ${r.manifest}${r.plugin ? ` (plugin ${r.plugin})` : ''}`]
  for (const c of r.checks) lines.push(`  ${LABEL[c.status]}  ${c.title.padEnd(width)}  ${c.reason}`)
  const count = (s: CheckStatus): number => r.checks.filter((c) => c.status === s).length
  lines.push(`${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped${r.interrupted ? ' (interrupted)' : ''}: ${r.ok ? 'OK' : 'NOT OK'}`)
  return lines.join('\n') + '\n'
}

/** Durations for reasons: "40 ms", "1.5 s", "30 s". */
export function seconds (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  return `${s >= 10 || Number.isInteger(s) ? Math.round(s) : s.toFixed(1)} s`
}
