// What check-plugin reports: one result per check, in a fixed order, as a table for people or
// as JSON for a plugin's CI.
import { Type, type Static } from '@sinclair/typebox'
import { BenchResult } from './cases.js'

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

export const CheckResult = Type.Object({
  id: Type.String({ description: 'A check id (manifest, starts, listens, ...), or case:NAME for a request of --cases' }),
  title: Type.String(),
  status: Type.Union(CHECK_STATUSES.map((s) => Type.Literal(s))),
  reason: Type.String({ description: 'Why it passed, failed or was skipped, in words a plugin author can act on' })
})
export type CheckResult = Static<typeof CheckResult> & { status: CheckStatus }

/** What `check-plugin --json` prints. */
export const CheckReport = Type.Object({
  manifest: Type.String({ description: 'The manifest file as given' }),
  plugin: Type.Union([Type.String(), Type.Null()], { description: 'Its name; null when the manifest is invalid' }),
  ok: Type.Boolean({ description: 'Every check passed or was skipped' }),
  interrupted: Type.Boolean({ description: 'Cut short by a signal; every process it started was stopped' }),
  checks: Type.Array(CheckResult),
  bench: Type.Union([BenchResult, Type.Null()])
})
export type CheckReport = Omit<Static<typeof CheckReport>, 'checks'> & { checks: CheckResult[] }

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
