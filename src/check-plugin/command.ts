// `plugvisor check-plugin MANIFEST [--cases FILE] [--bench N --concurrency C]
// [--min-success-rate R] [--max-p95-ms M] [--json]`: exit 0 when every check passed (or was
// skipped), 1 when one failed, 2 for a usage error, 130 when interrupted.
import { parseArgs } from 'node:util'
import { formatProblem } from '../config/load.js'
import { loadCases, type Case } from './cases.js'
import { checkPlugin, type BenchOptions } from './check-plugin.js'
import { formatReport } from './report.js'

export const CHECK_PLUGIN_USAGE = `usage: plugvisor check-plugin MANIFEST [--cases FILE] [--bench N [--concurrency C]]
                              [--min-success-rate R] [--max-p95-ms M] [--json]`

function usage (message: string): number {
  process.stderr.write(`plugvisor check-plugin: ${message}\n${CHECK_PLUGIN_USAGE}\n`)
  return 2
}

function numberOption (value: string | undefined, name: string, check: (n: number) => boolean): number | undefined | Error {
  if (value === undefined) return undefined
  const n = Number(value)
  return Number.isFinite(n) && check(n) ? n : new Error(`--${name} ${value} is not valid`)
}

export async function checkPluginCommand (args: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        cases: { type: 'string' },
        bench: { type: 'string' },
        concurrency: { type: 'string' },
        'min-success-rate': { type: 'string' },
        'max-p95-ms': { type: 'string' },
        json: { type: 'boolean' }
      }
    })
  } catch (err) {
    return usage((err as Error).message)
  }
  const { values, positionals } = parsed
  if (positionals.length !== 1) return usage('name one manifest file')
  const requests = numberOption(values.bench, 'bench', (n) => Number.isInteger(n) && n >= 1)
  const concurrency = numberOption(values.concurrency, 'concurrency', (n) => Number.isInteger(n) && n >= 1)
  const minSuccessRate = numberOption(values['min-success-rate'], 'min-success-rate', (n) => n >= 0 && n <= 1)
  const maxP95Ms = numberOption(values['max-p95-ms'], 'max-p95-ms', (n) => n > 0)
  for (const v of [requests, concurrency, minSuccessRate, maxP95Ms]) if (v instanceof Error) return usage(v.message)
  if (requests === undefined && (concurrency !== undefined || minSuccessRate !== undefined || maxP95Ms !== undefined)) {
    return usage('--concurrency, --min-success-rate and --max-p95-ms go with --bench N')
  }
  let cases: Case[] | undefined
  if (values.cases !== undefined) {
    const loaded = loadCases(values.cases)
    if (!loaded.cases) return usage(`invalid cases file\n${loaded.problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`)
    cases = loaded.cases
  }
  const bench: BenchOptions | undefined = requests === undefined
    ? undefined
    : { requests: requests as number, concurrency: (concurrency as number | undefined) ?? 1, minSuccessRate: minSuccessRate as number | undefined, maxP95Ms: maxP95Ms as number | undefined }

  // Ctrl-C or a CI timeout: the checks stop, every process they started is stopped, the report says so.
  const ac = new AbortController()
  const onSignal = (): void => ac.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    const report = await checkPlugin({ manifestFile: positionals[0], cases, bench, signal: ac.signal })
    process.stdout.write(values.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report))
    return report.interrupted ? 130 : report.ok ? 0 : 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
