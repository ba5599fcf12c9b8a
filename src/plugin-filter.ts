// The filters of GET /plugins. Values of one filter are alternatives (OR); different filters
// must all hold (AND); an absent or empty filter admits every plugin.
import type { PluginMetadata } from './config/metadata.js'

export interface PluginFilter {
  /** The plugin declares one of these capabilities (exact). */
  capability?: string[]
  /** It carries one of these tags (exact). */
  tag?: string[]
  /** Its status is one of these (the route's schema admits only status names). */
  status?: readonly string[]
  /** One of these texts occurs, ignoring case, in its name, description, a capability or a tag. */
  q?: string[]
}

type Filterable = PluginMetadata & { name: string, description: string | null, status: string }

const anyOf = <T>(wanted: readonly T[] | undefined, test: (w: T) => boolean): boolean =>
  wanted === undefined || wanted.length === 0 || wanted.some(test)

export function matchesFilter (p: Filterable, f: PluginFilter): boolean {
  return anyOf(f.capability, (c) => p.capabilities.includes(c)) &&
    anyOf(f.tag, (t) => p.tags.includes(t)) &&
    anyOf(f.status, (s) => p.status === s) &&
    anyOf(f.q, (q) => {
      const needle = q.toLowerCase()
      return [p.name, p.description ?? '', ...p.capabilities, ...p.tags].some((text) => text.toLowerCase().includes(needle))
    })
}
