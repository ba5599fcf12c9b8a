// check-plugin on the example plugins, each skipped only where its language's runtime is absent.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { packageRoot } from '../src/paths.js'
import { check, failures, withStatus } from './check-plugin-helper.js'
import { loadCases } from '../src/check-plugin/cases.js'

// Each check-plugin run is seconds of real processes (start, stay up, stop, SIGKILL, restart):
// a loaded 2-core machine needs more than the default file timeout. A bound against hangs only.
t.setTimeout(180_000)

const examples = path.join(packageRoot, 'examples/plugins')

function runtime (command: string): boolean {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const EXAMPLES = [
  { manifest: 'hello.yaml', cases: 'hello.cases.yaml', runtime: 'node', skipped: [], reload: /^SIGHUP: the same process \d+ printed the new config .* after the change, no restart$/ },
  { manifest: 'kv.yaml', cases: 'kv.cases.yaml', runtime: 'python3', skipped: [], reload: /^PUT \/config: the same process \d+ printed the new config/ },
  { manifest: 'ticker.yaml', cases: undefined, runtime: 'bash', skipped: ['listens', 'health-json', 'reload-hook'] }
]

for (const ex of EXAMPLES) {
  const has = runtime(ex.runtime)
  t.test(`examples/plugins/${ex.manifest} passes check-plugin`, { skip: has ? false : `${ex.runtime} is not installed: the ${ex.manifest} example needs it` }, async (t) => {
    const cases = ex.cases ? loadCases(path.join(examples, ex.cases)).cases : undefined
    const r = await check(path.join(examples, ex.manifest), { cases })
    t.equal(r.ok, true, failures(r))
    t.same(withStatus(r, 'fail'), [])
    t.same(withStatus(r, 'skip'), ex.skipped, 'only what does not apply is skipped')
    if (ex.reload) t.match(r.by['reload-hook'].reason, ex.reload, 'a config change reached it without a restart')
    if (cases) t.equal(r.checks.filter((c) => c.id.startsWith('case:') && c.status === 'pass').length, cases.length, 'every case passed')
  })
}
