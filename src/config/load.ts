// Reading and validating the main config and plugin manifests. Nothing here touches processes
// or HTTP: the result is plain data plus a list of problems, each naming file, JSON path, reason.
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { Type, type Static } from '@sinclair/typebox'
import { MainConfig, Manifest } from './schema.js'
import { compatibilityProblems } from './compatibility.js'
import { errors, withProblems, type ProblemsError } from '../errors.js'
import { matchesAny } from './glob.js'

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
  /** The document as written, ${VAR} not expanded: what the API shows (see shownManifest). */
  written?: unknown
}

/** pluginPolicy with its folders made absolute: what every manifest is checked against. */
export interface ManifestPolicy {
  allowedCommands?: string[]
  allowedCwd?: string[]
  /** Variables a manifest registered over the API may expand. */
  allowEnv: string[]
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
  /** pluginPolicy, resolved against the config file's folder. */
  policy: ManifestPolicy
}

// coerceTypes: a ${VAR} always expands to a string; "8080" must still fill an integer field.
const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: true, strict: true, allowUnionTypes: true })
ajv.addKeyword({ keyword: 'sensitive', schemaType: 'boolean' })
const validateMain = ajv.compile(MainConfig)
const validateManifest = ajv.compile(Manifest)
// configSchema is written by plugin authors: accept any JSON Schema they write. An Ajv instance
// keeps what it compiled: by object and by $id until removeSchema() (a kept $id refuses the same
// $id in another plugin or at the next load), and in its code scope for good (~6 KB a compile:
// every reload added each plugin's validator). So each schema is removed after its check, and the
// instance is replaced after USER_AJV_COMPILES compiles (a new one costs ~50 ms, a compile ~2 ms).
const USER_AJV_COMPILES = 100
let userAjv: Ajv | undefined
let userAjvCompiles = 0
function configSchemaAjv (): Ajv {
  if (userAjv === undefined || userAjvCompiles >= USER_AJV_COMPILES) {
    userAjv = new Ajv({ allErrors: true, useDefaults: true, strict: false })
    userAjv.addKeyword({ keyword: 'sensitive', schemaType: 'boolean' })
    userAjvCompiles = 0
  }
  userAjvCompiles++
  return userAjv
}

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

/** Whether a string takes anything from the environment (holds a ${VAR}). */
export function hasTemplate (value: string): boolean {
  VAR_RE.lastIndex = 0
  return VAR_RE.test(value)
}

/**
 * Expands ${VAR} and ${VAR:-default} in every string of a parsed document; unset variables are
 * problems, and so is any variable not matched by `allowed` when it is given.
 */
export function expandEnv (value: unknown, env: NodeJS.ProcessEnv, file: string, at = '', problems: ConfigProblem[] = [], allowed?: readonly string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(VAR_RE, (_m, name: string, def: string | undefined) => {
      if (allowed !== undefined && !matchesAny(name, allowed)) {
        problems.push({ file, path: at, reason: `environment variable ${name} is not in pluginPolicy.allowEnv (a manifest sent over the API may read only those)` })
        return ''
      }
      const v = env[name]
      if (v !== undefined) return v
      if (def !== undefined) return def
      problems.push({ file, path: at, reason: `environment variable ${name} is not set` })
      return ''
    })
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, file, `${at}/${i}`, problems, allowed))
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, env, file, `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, problems, allowed)
    return out
  }
  return value
}

/** Each hook is exactly one kind; an http hook needs the plugin's port. */
function hookProblems (m: Manifest, file: string, prefix: string): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const kindsOf = {
    postStart: ['http', 'exec'],
    preStop: ['http', 'exec'],
    reload: ['signal', 'http']
  } as const
  for (const hook of ['postStart', 'preStop', 'reload'] as const) {
    const h = m.hooks?.[hook] as Record<string, unknown> | undefined
    if (h === undefined) continue
    const kinds = kindsOf[hook].filter((k) => h[k] !== undefined)
    if (kinds.length !== 1) problems.push({ file, path: `${prefix}/hooks/${hook}`, reason: `must have exactly one of ${kindsOf[hook].join(', ')} (has ${kinds.length === 0 ? 'none' : kinds.join(', ')})` })
    else if (kinds[0] === 'http' && m.port === undefined) problems.push({ file, path: `${prefix}/hooks/${hook}/http`, reason: 'needs a port: an http hook calls the plugin at its port' })
  }
  return problems
}

function checkManifestSemantics (m: Manifest, file: string, prefix: string): ConfigProblem[] {
  const problems: ConfigProblem[] = compatibilityProblems(m, file, prefix)
  if (m.healthCheck) {
    const kinds = (['http', 'tcp', 'exec'] as const).filter((k) => m.healthCheck?.[k] !== undefined)
    if (kinds.length !== 1) problems.push({ file, path: `${prefix}/healthCheck`, reason: `must have exactly one of http, tcp, exec (has ${kinds.length === 0 ? 'none' : kinds.join(', ')})` })
    const probePort = m.healthCheck.http?.port ?? m.healthCheck.tcp?.port
    if ((kinds[0] === 'http' || kinds[0] === 'tcp') && probePort === undefined && m.port === undefined) {
      problems.push({ file, path: `${prefix}/healthCheck/${kinds[0]}`, reason: 'needs a port: set healthCheck port or the plugin port' })
    }
  }
  problems.push(...hookProblems(m, file, prefix))
  const cb = m.resilience.circuitBreaker
  if (cb.consecutiveFailures !== undefined && cb.failureRate !== undefined) problems.push({ file, path: `${prefix}/resilience/circuitBreaker`, reason: 'set either consecutiveFailures or failureRate, not both' })
  if (cb.consecutiveFailures !== undefined && cb.windowSize !== undefined) problems.push({ file, path: `${prefix}/resilience/circuitBreaker`, reason: 'set either consecutiveFailures or windowSize, not both' })
  if (cb.minimumCalls !== undefined && (cb.windowSize === undefined || cb.minimumCalls > cb.windowSize)) problems.push({ file, path: `${prefix}/resilience/circuitBreaker/minimumCalls`, reason: 'needs windowSize, and at most windowSize' })
  if (m.dependsOn.includes(m.name)) problems.push({ file, path: `${prefix}/dependsOn`, reason: 'a plugin cannot depend on itself' })
  if (m.configSchema) {
    const schemaAjv = configSchemaAjv()
    let validate: ValidateFunction
    try {
      validate = schemaAjv.compile(m.configSchema)
    } catch (err) {
      schemaAjv.removeSchema(m.configSchema)
      problems.push({ file, path: `${prefix}/configSchema`, reason: `is not a valid JSON Schema: ${(err as Error).message}` })
      return problems
    }
    try {
      if (!validate(m.config)) problems.push(...ajvProblems(file, validate.errors, `${prefix}/config`))
    } finally {
      schemaAjv.removeSchema(m.configSchema)
    }
  }
  return problems
}

/** The program a command names: as written when absolute, from cwd with a '/', else from PATH. */
function resolveCommand (command: string, cwd: string, envPath: string | undefined): string | undefined {
  if (path.isAbsolute(command)) return command
  if (command.includes('/')) return path.resolve(cwd, command)
  for (const dir of (envPath ?? '').split(':')) {
    if (dir === '') continue
    const candidate = path.resolve(dir, command)
    try {
      if (statSync(candidate).isFile()) return candidate
    } catch {}
  }
  return undefined
}

const realOrSelf = (p: string): string => {
  try {
    return realpathSync(p)
  } catch {
    return p
  }
}

const within = (dir: string, folder: string): boolean => dir === folder || dir.startsWith(folder.endsWith('/') ? folder : `${folder}/`)

/** cwd must exist; pluginPolicy confines cwd and the programs run (command, exec probe). */
function checkManifestPolicy (m: Manifest, cwd: string, policy: ManifestPolicy | undefined, env: NodeJS.ProcessEnv, file: string, prefix: string): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  let isDir = false
  try {
    isDir = statSync(cwd).isDirectory()
  } catch {}
  if (!isDir) problems.push({ file, path: `${prefix}/cwd`, reason: `folder ${cwd} does not exist` })
  else if (policy?.allowedCwd !== undefined) {
    const real = realOrSelf(cwd)
    if (!policy.allowedCwd.some((f) => within(real, realOrSelf(f)))) problems.push({ file, path: `${prefix}/cwd`, reason: `${real} is not in a folder of pluginPolicy.allowedCwd (${policy.allowedCwd.join(', ')})` })
  }
  const allowed = policy?.allowedCommands
  if (allowed !== undefined) {
    const envPath = m.env.PATH ?? env.PATH
    const programs: [string, string][] = [[`${prefix}/command`, m.command]]
    if (m.healthCheck?.exec) programs.push([`${prefix}/healthCheck/exec/command`, m.healthCheck.exec.command])
    for (const hook of ['postStart', 'preStop'] as const) {
      const exec = m.hooks?.[hook]?.exec
      if (exec) programs.push([`${prefix}/hooks/${hook}/exec/command`, exec.command])
    }
    for (const [at, command] of programs) {
      const program = resolveCommand(command, cwd, envPath)
      if (program === undefined) problems.push({ file, path: at, reason: `'${command}' is not found on PATH, so pluginPolicy.allowedCommands cannot allow it` })
      else if (!matchesAny(program, allowed) && !matchesAny(realOrSelf(program), allowed)) problems.push({ file, path: at, reason: `${program} is not allowed by pluginPolicy.allowedCommands (${allowed.join(', ')})` })
    }
  }
  return problems
}

/**
 * Validates one manifest document. Returns the manifest with defaults filled in, or the problems.
 * `prefix` is the JSON path of the document inside its file (for inline manifests).
 */
export function parseManifest (doc: unknown, opts: {
  file: string
  baseDir: string
  env: NodeJS.ProcessEnv
  prefix?: string
  policy?: ManifestPolicy
  /** Sent over the API: only the variables of policy.allowEnv may be expanded. */
  fromApi?: boolean
}): { manifest?: LoadedManifest, problems: ConfigProblem[] } {
  const prefix = opts.prefix ?? ''
  const problems: ConfigProblem[] = []
  const written = (doc as { name?: unknown } | null)?.name
  // The name is shown everywhere (logs, metrics labels, URLs): it cannot come from a variable.
  // eslint-disable-next-line no-template-curly-in-string -- the reason names the template syntax
  if (typeof written === 'string' && hasTemplate(written)) problems.push({ file: opts.file, path: `${prefix}/name`, reason: 'must be written out, not taken from ${VAR}' })
  const expanded = expandEnv(doc, opts.env, opts.file, prefix, problems, opts.fromApi === true ? opts.policy?.allowEnv ?? [] : undefined)
  if (expanded === null || typeof expanded !== 'object' || Array.isArray(expanded)) {
    return { problems: [{ file: opts.file, path: prefix, reason: 'must be an object (a plugin manifest)' }] }
  }
  const candidate = structuredClone(expanded) as Record<string, unknown>
  if (!validateManifest(candidate)) return { problems: [...problems, ...ajvProblems(opts.file, validateManifest.errors, prefix)] }
  const m = candidate as unknown as Manifest
  const cwd = path.resolve(opts.baseDir, m.cwd)
  problems.push(...checkManifestSemantics(m, opts.file, prefix))
  problems.push(...checkManifestPolicy(m, cwd, opts.policy, opts.env, opts.file, prefix))
  if (problems.length > 0) return { problems }
  return { manifest: { ...m, cwd, source: opts.file, baseDir: opts.baseDir, written: doc }, problems }
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
  /** A missing file is a config with every default (the default config file of `serve`), not an error. */
  missingIsEmpty?: boolean
}

/**
 * Loads the main config and every manifest. An invalid main config throws PLUGVISOR_INVALID_CONFIG (configInvalid);
 * an invalid manifest is left out and reported in `problems`.
 */
export function loadConfig (file: string, opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env
  const abs = path.resolve(file)
  const dir = path.dirname(abs)
  const { value, problem } = opts.missingIsEmpty && !existsSync(abs) ? { value: {} } : readStructuredFile(abs)
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
  const badProxies = config.server.trustProxy.map((a, i) => [a, i] as const).filter(([a]) => !proxyAddress(a))
  if (badProxies.length > 0) throw configInvalid(badProxies.map(([a, i]) => ({ file: abs, path: `/server/trustProxy/${i}`, reason: `'${a}' is not an address, a CIDR or one of loopback, linklocal, uniquelocal` })))
  const pluginsDir = path.resolve(dir, config.pluginsDir)
  const { allowEnv, allowedCommands, allowedCwd } = config.pluginPolicy
  const policy: ManifestPolicy = { allowEnv, allowedCommands, allowedCwd: allowedCwd?.map((f) => path.resolve(dir, f)) }
  const { manifests, problems } = loadManifests(config, abs, pluginsDir, env, policy)
  const authModeExplicit = typeof rest.auth === 'object' && rest.auth !== null && (rest.auth as { mode?: unknown }).mode !== undefined
  return { file: abs, config, dataDir: path.resolve(dir, config.dataDir), pluginsDir, manifests, problems, authModeExplicit, policy }
}

/** What Fastify's trustProxy (proxy-addr) takes: an address, address/prefix, or a named range. */
function proxyAddress (a: string): boolean {
  if (a === 'loopback' || a === 'linklocal' || a === 'uniquelocal') return true
  const [addr, prefix, ...more] = a.split('/')
  const family = isIP(addr)
  if (family === 0 || more.length > 0) return false
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128))
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
  if (env.PLUGVISOR_LOG_FORMAT) main.log = { ...(main.log as object | undefined), format: env.PLUGVISOR_LOG_FORMAT }
}

function loadManifests (config: MainConfig, configFile: string, pluginsDir: string, env: NodeJS.ProcessEnv, policy: ManifestPolicy): { manifests: LoadedManifest[], problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  const found: LoadedManifest[] = []
  config.plugins.forEach((doc, i) => {
    const r = parseManifest(doc, { file: configFile, baseDir: path.dirname(configFile), env, prefix: `/plugins/${i}`, policy })
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
    const r = parseManifest(value, { file, baseDir: pluginsDir, env, policy })
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
