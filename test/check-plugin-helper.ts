// check-plugin tests: a manifest written into a temp folder, checked, the result by check id.
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { tempDir, fixturePlugin } from './helper.js'
import { checkPlugin, type CheckOptions } from '../src/check-plugin/check-plugin.js'
import type { CheckReport, CheckResult } from '../src/check-plugin/report.js'

/**
 * A fixture manifest in `mode` with a quick startup probe: a startup budget of 5.2 s, room for
 * a slow start on a loaded machine (tests that wait the budget out set a smaller one).
 */
export function brokenPlugin (mode: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return fixturePlugin('fixture', mode, {
    port: 'auto',
    healthCheck: { http: { path: '/health' }, intervalMs: 100, timeoutMs: 200, startup: { failureThreshold: 50, intervalMs: 100 } },
    stop: { timeoutMs: 1000 },
    ...extra
  })
}

export function writeManifest (manifest: Record<string, unknown>, dir = tempDir('plugvisor-check-test-')): string {
  const file = path.join(dir, `${String(manifest.name)}.json`)
  writeFileSync(file, JSON.stringify(manifest))
  return file
}

export async function check (manifest: Record<string, unknown> | string, opts: Partial<CheckOptions> = {}): Promise<CheckReport & { by: Record<string, CheckResult> }> {
  const file = typeof manifest === 'string' ? manifest : writeManifest(manifest)
  const report = await checkPlugin({ manifestFile: file, ...opts })
  return { ...report, by: Object.fromEntries(report.checks.map((c) => [c.id, c])) }
}

/** The ids of the checks with this status. */
export const withStatus = (r: CheckReport, status: string): string[] => r.checks.filter((c) => c.status === status).map((c) => c.id)

/** The failed checks with their reasons, as an assertion message. */
export const failures = (r: CheckReport): string => JSON.stringify(r.checks.filter((c) => c.status === 'fail').map((c) => `${c.id}: ${c.reason}`))
