// Regenerates the committed artifacts that come from schemas: openapi.yaml (from the route
// schemas), schemas/*.json and the README reference tables (from the config schemas). `--check` fails on any difference.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { packageRoot } from '../paths.js'
import { publishedSchemas } from '../config/schema.js'
import { fillReadme } from '../config/reference.js'

export async function generateOpenapi (): Promise<string> {
  const { buildServer } = await import('../server.js')
  const dir = mkdtempSync(path.join(tmpdir(), 'plugvisor-openapi-'))
  const file = path.join(dir, 'plugvisor.json')
  writeFileSync(file, JSON.stringify({ dataDir: './data', pluginsDir: './none', log: { level: 'silent' } }))
  const { loadConfig } = await import('../config/load.js')
  const app = await buildServer({ loaded: loadConfig(file), logger: false, boot: false })
  try {
    await app.ready()
    return app.swagger({ yaml: true })
  } finally {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

export function generateSchemas (): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, schema] of Object.entries(publishedSchemas)) out[`schemas/${name}`] = JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...schema }, null, 2) + '\n'
  return out
}

export async function generatedArtifacts (): Promise<Record<string, string>> {
  const readme = fillReadme(readFileSync(path.join(packageRoot, 'README.md'), 'utf8'))
  return { 'openapi.yaml': await generateOpenapi(), ...generateSchemas(), 'README.md': readme }
}

async function run (): Promise<void> {
  const check = process.argv.includes('--check')
  let stale = 0
  for (const [rel, text] of Object.entries(await generatedArtifacts())) {
    const file = path.join(packageRoot, rel)
    let current = ''
    try { current = readFileSync(file, 'utf8') } catch {}
    if (current === text) continue
    if (check) {
      process.stderr.write(`${rel} is out of date: run npm run openapi and commit it\n`)
      stale++
    } else {
      writeFileSync(file, text)
      process.stdout.write(`wrote ${rel}\n`)
    }
  }
  process.exitCode = stale > 0 ? 1 : 0
}

if (process.argv[1] && path.resolve(process.argv[1]).endsWith(path.join('scripts', 'openapi.js'))) await run()
