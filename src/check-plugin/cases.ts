// Requests a plugin author expects to work, sent through the invoke proxy, and the benchmark:
// the same requests many times over, with the success rate and latency percentiles.
import { Type, type Static } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { isDeepStrictEqual } from 'node:util'
import { Agent, request } from 'undici'
import { readStructuredFile, type ConfigProblem } from '../config/load.js'

export const Case = Type.Object({
  name: Type.String({ minLength: 1, description: 'Shown in the report' }),
  request: Type.Object({
    method: Type.String({ default: 'GET', pattern: '^[A-Z]+$', description: 'HTTP method (default GET)' }),
    path: Type.String({ pattern: '^/', description: 'Path (and query) as the plugin sees it: sent to /plugins/NAME/invoke + path' }),
    headers: Type.Record(Type.String(), Type.String(), { default: {} }),
    body: Type.Optional(Type.Unknown({ description: 'A string is sent as it is; anything else as JSON (content-type application/json unless headers say otherwise)' }))
  }, { additionalProperties: false }),
  expect: Type.Object({
    status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, description: 'Expected status (default: any 2xx)' })),
    body: Type.Optional(Type.Unknown({ description: 'Expected body: a string equals the text; an object or array is a subset of the JSON answer' })),
    maxMs: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Slowest acceptable answer (milliseconds)' }))
  }, { additionalProperties: false, default: {} })
}, { additionalProperties: false })
export type Case = Static<typeof Case>

export const CaseList = Type.Array(Case, { minItems: 1 })

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false })
const validateCases = ajv.compile(CaseList)

/** Reads a YAML or JSON list of cases; problems name the file, JSON path and reason. */
export function loadCases (file: string): { cases?: Case[], problems: ConfigProblem[] } {
  const { value, problem } = readStructuredFile(file)
  if (problem) return { problems: [problem] }
  if (!validateCases(value)) {
    return { problems: (validateCases.errors ?? []).map((e) => ({ file, path: e.instancePath, reason: e.message ?? 'is invalid' })) }
  }
  const cases = value as Case[]
  // A case's name is its check's id in the report.
  const dup = cases.findIndex((c, i) => cases.findIndex((d) => d.name === c.name) !== i)
  if (dup >= 0) return { problems: [{ file, path: `/${dup}/name`, reason: `'${cases[dup].name}' names an earlier case too` }] }
  return { cases, problems: [] }
}

/** `expected` is contained in `actual`: objects by their keys (recursively), arrays item by item, the rest equal. */
export function isSubset (expected: unknown, actual: unknown): boolean {
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && expected.length === actual.length && expected.every((e, i) => isSubset(e, actual[i]))
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false
    return Object.entries(expected).every(([k, v]) => isSubset(v, (actual as Record<string, unknown>)[k]))
  }
  return isDeepStrictEqual(expected, actual)
}

export interface CaseOutcome {
  ok: boolean
  status: number | null
  ms: number
  /** Why it failed, for the plugin's author. */
  reason: string
}

const short = (v: unknown): string => {
  const s = typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v) ?? String(v)
  return s.length > 200 ? `${s.slice(0, 200)}…` : s
}

/** Sends one case to `base` (http://host:port/plugins/NAME/invoke) and judges the answer. */
export async function runCase (c: Case, base: string, agent: Agent, opts: { judgeTime?: boolean } = {}): Promise<CaseOutcome> {
  const headers: Record<string, string> = { ...c.request.headers }
  let body: string | undefined
  if (typeof c.request.body === 'string') body = c.request.body
  else if (c.request.body !== undefined) {
    body = JSON.stringify(c.request.body)
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json'
  }
  const t0 = performance.now()
  let status: number
  let text: string
  let type: string
  try {
    const res = await request(base + c.request.path, { method: c.request.method as 'GET', headers, body, dispatcher: agent })
    text = await res.body.text()
    status = res.statusCode
    type = String(res.headers['content-type'] ?? '')
  } catch (err) {
    return { ok: false, status: null, ms: performance.now() - t0, reason: `no answer: ${(err as Error).message}` }
  }
  const ms = performance.now() - t0
  const fail = (reason: string): CaseOutcome => ({ ok: false, status, ms, reason })
  const { expect } = c
  if (expect.status !== undefined ? status !== expect.status : status < 200 || status >= 300) {
    const via = /^PLUGVISOR_/.test(safeJson(text)?.code ?? '') ? ` from plugvisor (${safeJson(text)?.code}: ${safeJson(text)?.message})` : ''
    return fail(`answered ${status}${via}, expected ${expect.status ?? 'a 2xx'}; body ${short(text)}`)
  }
  if (expect.body !== undefined) {
    const actual = typeof expect.body === 'string' ? text : /json/.test(type) ? safeJson(text) : undefined
    if (actual === undefined) return fail(`answered ${type || 'no content-type'}, expected a JSON body containing ${short(expect.body)}`)
    if (!isSubset(expect.body, actual)) return fail(`body ${short(actual)} does not contain ${short(expect.body)}`)
  }
  if (opts.judgeTime !== false && expect.maxMs !== undefined && ms > expect.maxMs) {
    return fail(`answered in ${ms.toFixed(0)} ms, more than maxMs ${expect.maxMs}`)
  }
  return { ok: true, status, ms, reason: `${status} in ${ms.toFixed(1)} ms` }
}

function safeJson (text: string): Record<string, string> | undefined {
  try { return JSON.parse(text) } catch { return undefined }
}

export const BenchResult = Type.Object({
  requests: Type.Integer(),
  concurrency: Type.Integer(),
  successRate: Type.Number({ description: 'Share of requests whose case matched (0..1)' }),
  p50Ms: Type.Number({ description: 'Latencies through the invoke proxy, nearest rank (milliseconds)' }),
  p95Ms: Type.Number(),
  p99Ms: Type.Number(),
  requestsPerSecond: Type.Number(),
  firstFailure: Type.Union([Type.String(), Type.Null()], { description: 'The case and reason of the first failed request' })
})
export type BenchResult = Static<typeof BenchResult>

/** Nearest-rank percentile of sorted values. */
export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

/**
 * `requests` calls, at most `concurrency` at a time, cycling through `cases`. Success means the
 * case's expected status and body (its maxMs is left to the percentiles).
 */
export async function bench (cases: Case[], base: string, requests: number, concurrency: number): Promise<BenchResult> {
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 10_000 })
  const times: number[] = []
  let ok = 0
  let next = 0
  let firstFailure: string | null = null
  const t0 = performance.now()
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, requests) }, async () => {
      while (next < requests) {
        const c = cases[next++ % cases.length]
        const r = await runCase(c, base, agent, { judgeTime: false })
        times.push(r.ms)
        if (r.ok) ok++
        else firstFailure ??= `${c.name}: ${r.reason}`
      }
    }))
  } finally {
    await agent.close()
  }
  const seconds = (performance.now() - t0) / 1000
  times.sort((a, b) => a - b)
  return {
    requests,
    concurrency,
    successRate: ok / requests,
    p50Ms: percentile(times, 50),
    p95Ms: percentile(times, 95),
    p99Ms: percentile(times, 99),
    requestsPerSecond: requests / seconds,
    firstFailure
  }
}
