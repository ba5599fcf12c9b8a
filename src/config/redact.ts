// Values of config properties whose configSchema marks them `sensitive: true` never leave the
// daemon: API output, logs and the audit log show them as "[redacted]".
import type { LoadedManifest } from './load.js'

export const REDACTED = '[redacted]'

type JsonSchema = { type?: unknown, sensitive?: boolean, properties?: Record<string, JsonSchema>, items?: JsonSchema, additionalProperties?: unknown }

export function redactValue (value: unknown, schema: JsonSchema | undefined): unknown {
  if (schema === undefined || value === null || value === undefined) return value
  if (schema.sensitive === true) return REDACTED
  if (Array.isArray(value)) return schema.items ? value.map((v) => redactValue(v, schema.items)) : value
  if (typeof value === 'object' && schema.properties) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, schema.properties[k])
    return out
  }
  return value
}

/** The manifest as the API shows it: defaults filled in, sensitive config redacted, internal fields dropped. */
export function redactManifest (m: LoadedManifest): Record<string, unknown> {
  const { source, baseDir, ...rest } = m as LoadedManifest & { inlineIndex?: number }
  delete (rest as { inlineIndex?: number }).inlineIndex
  return { ...rest, config: redactValue(m.config, m.configSchema as JsonSchema | undefined), source }
}
