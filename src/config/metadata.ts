// What a manifest says about its plugin beyond how to run it: author, homepage, capabilities,
// tags. Every plugin summary of the API carries it.
import { Type, type Static } from '@sinclair/typebox'
import { Nullable } from '../shapes.js'
import type { Manifest } from './schema.js'

export const pluginMetadataProperties = {
  author: Nullable(Type.String()),
  homepage: Nullable(Type.String()),
  capabilities: Type.Array(Type.String(), { description: "The manifest's capabilities" }),
  tags: Type.Array(Type.String(), { description: "The manifest's tags" })
}
export const PluginMetadata = Type.Object(pluginMetadataProperties)
export type PluginMetadata = Static<typeof PluginMetadata>

export function pluginMetadata (m: Pick<Manifest, 'author' | 'homepage' | 'capabilities' | 'tags'>): PluginMetadata {
  return { author: m.author ?? null, homepage: m.homepage ?? null, capabilities: m.capabilities, tags: m.tags }
}
