// The README's field reference tables, generated from the schemas (the one place where units
// and defaults live) so the documentation cannot drift from the code.
import type { TSchema } from '@sinclair/typebox'
import { MainConfig, Manifest } from './schema.js'

interface Row { field: string, type: string, def: string, description: string }

function typeOf (s: TSchema): string {
  if (s.const !== undefined) return JSON.stringify(s.const)
  if (Array.isArray(s.anyOf)) return (s.anyOf as TSchema[]).map(typeOf).join(' \\| ')
  if (s.type === 'array') return `${typeOf(s.items as TSchema)}[]`
  if (s.type === 'object' && s.patternProperties) return 'map'
  if (s.type === 'integer' || s.type === 'number') {
    if (s.exclusiveMinimum !== undefined) return `${s.type} > ${s.exclusiveMinimum}${s.maximum !== undefined ? `, ≤ ${s.maximum}` : ''}`
    const lo = s.minimum
    const hi = s.maximum
    return lo !== undefined || hi !== undefined ? `${s.type} ${lo ?? ''}..${hi ?? ''}` : String(s.type)
  }
  return String(s.type ?? 'any')
}

/** `{}` on an object whose fields carry their own defaults: the rows below say them. */
function nestedDefault (prop: TSchema): boolean {
  return prop.type === 'object' && prop.properties !== undefined && typeof prop.default === 'object' && Object.keys(prop.default as object).length === 0
}

function walk (schema: TSchema, prefix: string, rows: Row[]): void {
  const required = new Set<string>((schema.required as string[] | undefined) ?? [])
  for (const [key, prop] of Object.entries((schema.properties ?? {}) as Record<string, TSchema>)) {
    const field = prefix + key
    const nested = prop.type === 'object' && prop.properties && Object.keys(prop.properties).length > 0
    const def = prop.default !== undefined ? (nestedDefault(prop) ? '' : JSON.stringify(prop.default)) : required.has(key) ? '(required)' : ''
    // The default column says the default: drop it from the prose.
    const description = String(prop.description ?? '').replace(/, default [^)]*\)/, ')').replace(/\s*\(default [^)]*\)/, '').replace(/\|/g, '\\|')
    if (nested) {
      if (description) rows.push({ field, type: 'object', def, description })
      walk(prop, field + '.', rows)
    } else if (Array.isArray(prop.anyOf) && (prop.anyOf as TSchema[]).every((s) => s.type === 'object')) {
      rows.push({ field, type: 'object', def, description })
      ;(prop.anyOf as TSchema[]).forEach((alt) => walk(alt, field + '.', rows))
    } else {
      rows.push({ field, type: typeOf(prop), def, description })
    }
  }
}

export function referenceTable (schema: TSchema): string {
  const rows: Row[] = []
  walk(schema, '', rows)
  const seen = new Set<string>()
  const lines = ['| field | type | default | meaning |', '| --- | --- | --- | --- |']
  for (const r of rows) {
    const key = `${r.field}|${r.type}`
    if (seen.has(key)) continue
    seen.add(key)
    lines.push(`| \`${r.field}\` | ${r.type} | ${r.def ? `\`${r.def}\`` : ''} | ${r.description} |`)
  }
  return lines.join('\n')
}

export const referenceSections: Record<string, TSchema> = {
  'manifest-reference': Manifest,
  'config-reference': MainConfig
}

/** Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` with the generated table. */
export function fillReadme (readme: string): string {
  let out = readme
  for (const [name, schema] of Object.entries(referenceSections)) {
    const start = `<!-- ${name}:start -->`
    const end = `<!-- ${name}:end -->`
    const i = out.indexOf(start)
    const j = out.indexOf(end)
    if (i < 0 || j < i) continue
    out = out.slice(0, i + start.length) + '\n' + referenceTable(schema) + '\n' + out.slice(j)
  }
  return out
}
