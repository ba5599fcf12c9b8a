// What a manifest says about its plugin beyond how to run it: author, homepage, capabilities,
// tags. Every plugin summary of the API carries it.
import type { Manifest } from './schema.js'

export interface PluginMetadata {
  author: string | null
  homepage: string | null
  capabilities: string[]
  tags: string[]
}

export function pluginMetadata (m: Pick<Manifest, 'author' | 'homepage' | 'capabilities' | 'tags'>): PluginMetadata {
  return { author: m.author ?? null, homepage: m.homepage ?? null, capabilities: m.capabilities, tags: m.tags }
}
