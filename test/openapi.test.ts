import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { generatedArtifacts } from '../src/scripts/openapi.js'
import { packageRoot } from '../src/paths.js'

t.test('openapi.yaml, schemas/*.json and the README reference tables equal what the schemas generate', async (t) => {
  const artifacts = await generatedArtifacts()
  t.ok(artifacts['openapi.yaml'].includes('/plugins/{name}/restart'), 'the document holds the routes')
  for (const [rel, text] of Object.entries(artifacts)) {
    t.equal(readFileSync(path.join(packageRoot, rel), 'utf8'), text, `${rel} is up to date (npm run openapi)`)
  }
})
