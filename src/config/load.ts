// Reading and validating the main config and plugin manifests. Nothing here touches processes
// or HTTP: the result is plain data plus a list of problems, each naming file, JSON path, reason.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { Type, type Static } from '@sinclair/typebox'
import { MainConfig, Manifest } from './schema.js'
import { errors, withProblems, type ProblemsError } from '../errors.js'

/** One thing wrong with a config file, a manifest or a request body. */
export const ConfigProblem = Type.Object({
  file: Type.String({ description: "The file, or 'request body'" }),
  path: Type.String({ description: 'JSON path inside the file' }),
  reason: Type.String()
}, { $id: 'ConfigProblem' })
export type ConfigProblem = Static<typeof ConfigProblem>

/** The main config cannot be used: a catalogue error (PLUGVISOR_INVALID_CONFIG) listing every problem. */
export function configInvalid (problems: ConfigProblem[]): ProblemsError {
  return withProblems(new errors.InvalidConfig(problems.map(formatProblem).join('; ')), problems)
}

export function formatProblem (p: ConfigProblem): string {
  return `${p.file}: ${p.path || '/'}: ${p.reason}`
}

/** A validated manifest plus where it came from (cwd is already absolute). */
export interface LoadedManifest extends Manifest {
  source: string
  baseDir: string
}

export interface LoadedConfig {
  file: string
  config: MainConfig
  /** Absolute paths derived from the config. */
  dataDir: string
  pluginsDir: string
  manifests: LoadedManifest[]
  /** Manifests that were skipped, with why. The daemon runs the valid ones. */
  problems: ConfigProblem[]
  /** auth.mode was written in the file (not a default): required to listen off loopback without tokens. */
  authModeExplicit: boolean
}

// coerceTypes: a ${VAR} always expands to a string; "8080" must still fill an integer field.
const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, strict: true, allowUnionTypes: true })
ajv.addKeyword({ keyword: 'sensitive', schemaType: 'boolean' })
const validateMain = ajv.compile(MainConfig)
const validateManifest = ajv.compile(Manifest)
// configSchema is written by plugin authors: accept any JSON Schema they write.
const userAjv = new Ajv({ allErrors: true, useDefaults: true, strict: false })
userAjv.addKeyword({ keyword: 'sensitive', schemaType: 'boolean' })

function ajvProblems (file: string, errors: ErrorObject[] | null | undefined, prefix = ''): ConfigProblem[] {
  const seen = new Set<string>()
  const out: ConfigProblem[] = []
  // A union of literals (restart.policy, stop.signal) fails once per literal: gather them into one "must be one of".
  const allowed = new Map<string, { problem: ConfigProblem, values: unknown[] }>()
  for (const e of errors ?? []) {
    const path = prefix + e.instancePath
    if (e.keyword === 'enum' || e.keyword === 'const') {
      const values = (e.params as { allowedValues?: unknown[] }).allowedValues ?? [(e.params as { allowedValue?: unknown }).allowedValue]
      let entry = allowed.get(path)
      if (!entry) {
        entry = { problem: { file, path, reason: '' }, values: [] }
        allowed.set(path, entry)
        out.push(entry.problem)
      }
      for (const v of values) if (!entry.values.includes(v)) entry.values.push(v)
      entry.problem.reason = `must be one of ${entry.values.map((v) => JSON.stringify(v)).join(', ')}`
      continue
    }
    // Union members each report their own failure; keep the message an operator can act on.
    let reason = e.message ?? 'is invalid'
    if (e.keyword === 'additionalProperties') reason = `unknown property '${(e.params as { additionalProperty: string }).additionalProperty}'`
    else if (e.keyword === 'not' && e.instancePath.endsWith('/name')) reason = 'is a reserved name'
    const key = `${path}|${reason}`
    if (!seen.has(key)) { seen.add(key); out.push({ file, path, reason }) }
  }
  // anyOf failures say only "must match a schema in anyOf": keep them only when nothing better is known for that path.
  return out.filter((p) => p.reason !== 'must match a schema in anyOf' || !out.some((q) => q !== p && q.path.startsWith(p.path)))
}

/** Reads a YAML or JSON file into a value, reporting syntax errors as problems. */
export function readStructuredFile (file: string): { value?: unknown, problem?: ConfigProblem } {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    return { problem: { file, path: '', reason: `cannot read: ${(err as Error).message}` } }
  }
  try {
    return { value: file.endsWith('.json') ? JSON.parse(text) : parseYaml(text) }
  } catch (err) {
    return { problem: { file, path: '', reason: `cannot parse: ${(err as Error).message.split('\n')[0]}` } }
  }
}

const VAR_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

/** Expands ${VAR} and ${VAR:-default} in every string of a parsed document; unset variables are problems. */
export function expandEnv (value: unknown, env: NodeJS.ProcessEnv, file: string, at = '', problems: ConfigProblem[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(VAR_RE, (_m, name: string, def: string | undefined) => {
      const v = env[name]
      if (v !== undefined) return v
      if (def !== undefined) return def
      problems.push({ file, path: at, reason: `environment variable ${name} is not set` })
      return ''
    })
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, file, `${at}/${i}`, problems))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, env, file, `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, problems)
    return out
  }
  return value
}

function checkManifestSemantics (m: Manifest, file: string, prefix: string): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  if (m.healthCheck) {
    const kinds = (['http', 'tcp', 'exec'] as const).filter((k) => m.healthCheck?.[k] !== undefined)
    if (kinds.length !== 1) problems.push({ file, path: `${prefix}/healthCheck`, reason: `must have exactly one of http, tcp, exec (has ${kinds.length === 0 ? 'none' : kinds.join(', ')})` })
    const probePort = m.healthCheck.http?.port ?? m.healthCheck.tcp?.port
    if ((kinds[0] === 'http' || kinds[0] === 'tcp') && probePort === undefined && m.port === undefined) {
      problems.push({ file, path: `${prefix}/healthCheck/${kinds[0]}`, reason: 'needs a port: set healthCheck port or the plugin port' })
    }
  }
  const cb = m.resilience.circuitBreaker
  if (cb.consecutiveFailures !== undefined && cb.failureRate !== undefined) problems.push({ file, path: `${prefix}/resilience/circuitBreaker`, reason: 'set either consecutiveFailures or failureRate, not both' })
  if (m.dependsOn.includes(m.name)) problems.push({ file, path: `${prefix}/dependsOn`, reason: 'a plugin cannot depend on itself' })
  if (m.configSchema) {
    let validate: ValidateFunction
    try {
      validate = userAjv.compile(m.configSchema)
    } catch (err) {
      problems.push({ file, path: `${prefix}/configSchema`, reason: `is not a valid JSON Schema: ${(err as Error).message}` })
      return problems
    }
    if (!validate(m.config)) problems.push(...ajvProblems(file, validate.errors, `${prefix}/config`))
  }
  return problems
}

/**
 * Validates one manifest document. Returns the manifest with defaults filled in, or the problems.
 * `prefix` is the JSON path of the document inside its file (for inline manifests).
 */
export function parseManifest (doc: unknown, opts: { file: string, baseDir: string, env: NodeJS.ProcessEnv, prefix?: string }): { manifest?: LoadedManifest, problems: ConfigProblem[] } {
  const prefix = opts.prefix ?? ''
  const problems: ConfigProblem[] = []
  const expanded = expandEnv(doc, opts.env, opts.file, prefix, problems)
  if (expanded === null || typeof expanded !== 'object' || Array.isArray(expanded)) {
    return { problems: [{ file: opts.file, path: prefix, reason: 'must be an object (a plugin manifest)' }] }
  }
  const candidate = structuredClone(expanded) as Record<string, unknown>
  if (!validateManifest(candidate)) return { problems: [...problems, ...ajvProblems(opts.file, validateManifest.errors, prefix)] }
  const m = candidate as unknown as Manifest
  problems.push(...checkManifestSemantics(m, opts.file, prefix))
  if (problems.length > 0) return { problems }
  return { manifest: { ...m, cwd: path.resolve(opts.baseDir, m.cwd), source: opts.file, baseDir: opts.baseDir }, problems }
}

/** Cycles and unknown dependencies across the whole set; offending plugins are dropped with a problem each. */
export function checkDependencies (manifests: LoadedManifest[]): { valid: LoadedManifest[], problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  let current = manifests
  // Dropping one plugin can orphan others that depend on it: repeat until stable.
  for (;;) {
    const byName = new Map(current.map((m) => [m.name, m]))
    const bad = new Map<string, ConfigProblem>()
    for (const m of current) {
      const missing = m.dependsOn.filter((d) => !byName.has(d))
      if (missing.length > 0) bad.set(m.name, { file: m.source, path: pathOf(m, '/dependsOn'), reason: `depends on unknown or invalid plugin(s): ${missing.join(', ')}` })
    }
    for (const cycle of findCycles(current)) {
      for (const name of cycle) {
        const m = byName.get(name)!
        if (!bad.has(name)) bad.set(name, { file: m.source, path: pathOf(m, '/dependsOn'), reason: `dependency cycle: ${[...cycle, cycle[0]].join(' -> ')}` })
      }
    }
    if (bad.size === 0) return { valid: current, problems }
    problems.push(...bad.values())
    current = current.filter((m) => !bad.has(m.name))
  }
}

function pathOf (m: LoadedManifest & { inlineIndex?: number }, suffix: string): string {
  return m.inlineIndex !== undefined ? `/plugins/${m.inlineIndex}${suffix}` : suffix
}

/** Every elementary cycle found by a depth-first walk (each reported once). */
export function findCycles (manifests: Pick<Manifest, 'name' | 'dependsOn'>[]): string[][] {
  const deps = new Map(manifests.map((m) => [m.name, m.dependsOn]))
  const color = new Map<string, 'grey' | 'black'>()
  const stack: string[] = []
  const cycles: string[][] = []
  const visit = (n: string): void => {
    color.set(n, 'grey')
    stack.push(n)
    for (const d of deps.get(n) ?? []) {
      if (!deps.has(d)) continue
      const c = color.get(d)
      if (c === 'grey') cycles.push(stack.slice(stack.indexOf(d)))
      else if (c === undefined) visit(d)
    }
    stack.pop()
    color.set(n, 'black')
  }
  for (const n of deps.keys()) if (!color.has(n)) visit(n)
  return cycles
}

/** Names the loader reads from the plugins folder. */
export const MANIFEST_EXT = /\.(ya?ml|json)$/

export interface LoadOptions {
  env?: NodeJS.ProcessEnv
}

/**
 * Loads the main config and every manifest. An invalid main config throws PLUGVISOR_INVALID_CONFIG (configInvalid);
 * an invalid manifest is left out and reported in `problems`.
 */
export function loadConfig (file: string, opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env
  const abs = path.resolve(file)
  const dir = path.dirname(abs)
  const { value, problem } = readStructuredFile(abs)
  if (problem) throw configInvalid([problem])
  const expandProblems: ConfigProblem[] = []
  // Inline manifests are expanded (and reported) one by one below, so one bad plugin does not sink the daemon.
  const raw = (value ?? {}) as Record<string, unknown>
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw configInvalid([{ file: abs, path: '', reason: 'must be an object' }])
  const { plugins: inline, ...rest } = raw
  const main = expandEnv(rest, env, abs, '', expandProblems) as Record<string, unknown>
  if (inline !== undefined) main.plugins = inline
  applyEnvOverrides(main, env, abs, expandProblems)
  if (!validateMain(main)) throw configInvalid([...expandProblems, ...ajvProblems(abs, validateMain.errors)])
  if (expandProblems.length > 0) throw configInvalid(expandProblems)
  const config = main as unknown as MainConfig
  const pluginsDir = path.resolve(dir, config.pluginsDir)
  const { manifests, problems } = loadManifests(config, abs, pluginsDir, env)
  const authModeExplicit = typeof rest.auth === 'object' && rest.auth !== null && (rest.auth as { mode?: unknown }).mode !== undefined
  return { file: abs, config, dataDir: path.resolve(dir, config.dataDir), pluginsDir, manifests, problems, authModeExplicit }
}

function applyEnvOverrides (main: Record<string, unknown>, env: NodeJS.ProcessEnv, file: string, problems: ConfigProblem[]): void {
  const server = (main.server ?? {}) as Record<string, unknown>
  if (env.PLUGVISOR_HOST) server.host = env.PLUGVISOR_HOST
  if (env.PLUGVISOR_PORT) {
    const port = Number(env.PLUGVISOR_PORT)
    if (Number.isInteger(port)) server.port = port
    else problems.push({ file: `${file} (env PLUGVISOR_PORT)`, path: '/server/port', reason: `must be an integer, got '${env.PLUGVISOR_PORT}'` })
  }
  if (env.PLUGVISOR_HOST || env.PLUGVISOR_PORT) main.server = server
  if (env.PLUGVISOR_DATA_DIR) main.dataDir = path.resolve(env.PLUGVISOR_DATA_DIR)
  if (env.PLUGVISOR_LOG_LEVEL) main.log = { ...(main.log as object | undefined), level: env.PLUGVISOR_LOG_LEVEL }
}

function loadManifests (config: MainConfig, configFile: string, pluginsDir: string, env: NodeJS.ProcessEnv): { manifests: LoadedManifest[], problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  const found: LoadedManifest[] = []
  config.plugins.forEach((doc, i) => {
    const r = parseManifest(doc, { file: configFile, baseDir: path.dirname(configFile), env, prefix: `/plugins/${i}` })
    problems.push(...r.problems)
    if (r.manifest) found.push(Object.assign(r.manifest, { inlineIndex: i }))
  })
  let entries: string[] = []
  try {
    if (statSync(pluginsDir).isDirectory()) entries = readdirSync(pluginsDir).filter((f) => MANIFEST_EXT.test(f)).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') problems.push({ file: pluginsDir, path: '', reason: `cannot read plugins folder: ${(err as Error).message}` })
  }
  for (const entry of entries) {
    const file = path.join(pluginsDir, entry)
    const { value, problem } = readStructuredFile(file)
    if (problem) { problems.push(problem); continue }
    const r = parseManifest(value, { file, baseDir: pluginsDir, env })
    problems.push(...r.problems)
    if (r.manifest) found.push(r.manifest)
  }
  // Two manifests with one name: the first one (inline, then by file name) wins; the other is reported.
  const byName = new Map<string, LoadedManifest>()
  for (const m of found) {
    const first = byName.get(m.name)
    if (first) problems.push({ file: m.source, path: pathOf(m, '/name'), reason: `plugin '${m.name}' is already defined in ${first.source}` })
    else byName.set(m.name, m)
  }
  const deps = checkDependencies([...byName.values()])
  return { manifests: deps.valid, problems: [...problems, ...deps.problems] }
}
