// What the API, logs, events and metrics may show of a manifest: the document as written
// (${VAR} templates, never what they expanded to), with every config value that its
// configSchema marks `sensitive: true` shown as "[redacted]", wherever the mark sits: behind
// $ref/$defs, in allOf/anyOf/oneOf/if-then-else, properties, patternProperties,
// additionalProperties, items or prefixItems. A mark in any branch counts.
import { hasTemplate, type LoadedManifest } from './load.js'

export const REDACTED = '[redacted]'

type Schema = Record<string, unknown>
type Key = string | number

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/** The schema a local $ref ("#", "#/$defs/x", "#/definitions/x") points to in root. */
function resolveRef (ref: string, root: Schema): Schema | undefined {
  if (!ref.startsWith('#')) return undefined
  let at: unknown = root
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')
    at = isObject(at) || Array.isArray(at) ? (at as Record<string, unknown>)[part] : undefined
  }
  return isObject(at) ? at : undefined
}

/** A schema and every schema that applies to the same value through $ref and the combinators. */
function applicable (schemas: Schema[], root: Schema): Schema[] {
  const out: Schema[] = []
  const todo = [...schemas]
  while (todo.length > 0) {
    const s = todo.pop()!
    if (out.includes(s)) continue
    out.push(s)
    if (typeof s.$ref === 'string') { const r = resolveRef(s.$ref, root); if (r) todo.push(r) }
    for (const k of ['allOf', 'anyOf', 'oneOf']) if (Array.isArray(s[k])) todo.push(...(s[k] as unknown[]).filter(isObject))
    for (const k of ['then', 'else']) if (isObject(s[k])) todo.push(s[k] as Schema)
  }
  return out
}

function childSchemas (schemas: Schema[], key: Key): Schema[] {
  const out: Schema[] = []
  for (const s of schemas) {
    if (typeof key === 'number') {
      const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : Array.isArray(s.items) ? s.items : undefined
      const tuple = prefix?.[key]
      if (isObject(tuple)) out.push(tuple)
      else if (prefix !== undefined && Array.isArray(s.items) && isObject(s.additionalItems)) out.push(s.additionalItems)
      else if (isObject(s.items)) out.push(s.items)
      continue
    }
    let named = false
    if (isObject(s.properties) && isObject(s.properties[key])) { out.push(s.properties[key] as Schema); named = true }
    if (isObject(s.patternProperties)) {
      for (const [pattern, sub] of Object.entries(s.patternProperties)) {
        let re: RegExp | undefined
        try { re = new RegExp(pattern, 'u') } catch {}
        if (re?.test(key) === true && isObject(sub)) { out.push(sub); named = true }
      }
    }
    if (!named && isObject(s.additionalProperties)) out.push(s.additionalProperties)
  }
  return out
}

function mapSensitive (value: unknown, schemas: Schema[], root: Schema, at: Key[], fn: (value: unknown, at: Key[]) => unknown): unknown {
  if (schemas.length === 0) return value
  const all = applicable(schemas, root)
  if (all.some((s) => s.sensitive === true)) return fn(value, at)
  if (Array.isArray(value)) return value.map((v, i) => mapSensitive(v, childSchemas(all, i), root, [...at, i], fn))
  if (isObject(value)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = mapSensitive(v, childSchemas(all, k), root, [...at, k], fn)
    return out
  }
  return value
}

/** `value` with every part its schema marks sensitive replaced by "[redacted]". */
export function redactValue (value: unknown, schema: unknown): unknown {
  if (!isObject(schema)) return value
  return mapSensitive(value, [schema], schema, [], (v) => v === undefined || v === null ? v : REDACTED)
}

/** Puts back the value on file wherever a sensitive part was sent as "[redacted]" (as the API shows it). */
export function restoreRedacted (sent: unknown, onFile: unknown, schema: unknown): unknown {
  if (!isObject(schema)) return sent
  return mapSensitive(sent, [schema], schema, [], (v, at) => {
    if (v !== REDACTED) return v
    let old: unknown = onFile
    for (const k of at) old = isObject(old) || Array.isArray(old) ? (old as Record<Key, unknown>)[k] : undefined
    return old
  })
}

/** `actual` with every string that was written as a ${VAR} template put back as written. */
function asWritten (written: unknown, actual: unknown): unknown {
  if (typeof written === 'string' && hasTemplate(written)) return written
  if (Array.isArray(written) && Array.isArray(actual)) return actual.map((v, i) => asWritten(written[i], v))
  if (isObject(written) && isObject(actual)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(actual)) out[k] = k in written ? asWritten(written[k], v) : v
    return out
  }
  return actual
}

/** One top-level field of a manifest as it may be shown (version, description in summaries). */
export function shownField<K extends keyof LoadedManifest> (m: LoadedManifest, key: K): unknown {
  return isObject(m.written) ? asWritten(m.written[key], m[key]) : m[key]
}

/** The config of a plugin as answers show it: as written, sensitive parts redacted. */
export function redactedConfig (m: LoadedManifest): unknown {
  return redactValue(shownField(m, 'config'), m.configSchema)
}

/** The manifest as the API shows it: defaults filled in, templates as written, sensitive config redacted, internal fields dropped. */
export function redactManifest (m: LoadedManifest): Record<string, unknown> {
  const { source, baseDir, written, ...rest } = m as LoadedManifest & { inlineIndex?: number }
  delete (rest as { inlineIndex?: number }).inlineIndex
  const shown = asWritten(written, rest) as Record<string, unknown>
  return { ...shown, config: redactedConfig(m), source }
}
