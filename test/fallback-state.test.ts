// The fallback state's rules (src/invoke/fallback.ts) on a table of plugin states, with the
// inputs given: what makes a plugin unavailable, what a manifest change keeps, a fallback plugin
// that goes away. The behaviour on real processes is in fallback.test.ts.
import t from 'tap'
import { createFallbacks, unavailableBecause, type FallbackChange } from '../src/invoke/fallback.js'
import type { FallbackTarget } from '../src/config/schema.js'
import type { Health, StateName } from '../src/supervisor/lifecycle.js'
import type { CircuitStateName } from '../src/invoke/circuit.js'

interface Fake { state: StateName, verdict: Health, circuit: CircuitStateName | null, fallback?: FallbackTarget }

function setup (plugins: Record<string, Fake>) {
  const changes: FallbackChange[] = []
  let now = 1000
  const fallbacks = createFallbacks({
    inputs: {
      has: (n) => n in plugins,
      names: () => Object.keys(plugins),
      fallbackOf: (n) => plugins[n].fallback,
      state: (n) => plugins[n].state,
      verdict: (n) => plugins[n].verdict,
      circuit: (n) => plugins[n].circuit
    },
    now: () => now,
    publish: (c) => changes.push(c)
  })
  for (const n of Object.keys(plugins)) fallbacks.loaded(n)
  return { fallbacks, changes, tick: () => { now += 1000 } }
}

t.test('unavailable: not running, unhealthy, or a circuit that is not closed; unknown health is not', async (t) => {
  t.equal(unavailableBecause('running', 'healthy', 'closed'), null)
  t.equal(unavailableBecause('running', 'unknown', 'closed'), null)
  t.equal(unavailableBecause('running', 'degraded', null), null)
  t.equal(unavailableBecause('backoff', 'unknown', 'closed'), 'plugin is backoff')
  t.equal(unavailableBecause('running', 'unhealthy', 'closed'), 'plugin is unhealthy')
  for (const c of ['open', 'half-open', 'isolated'] as const) t.equal(unavailableBecause('running', 'healthy', c), `circuit ${c}`)
})

t.test('the state at load is the starting point, not a change; later changes are published once', async (t) => {
  const plugins: Record<string, Fake> = { a: { state: 'stopped', verdict: 'unknown', circuit: null, fallback: { status: 503 } } }
  const { fallbacks, changes, tick } = setup(plugins)
  t.match(fallbacks.view('a'), { active: true, mode: 'auto', since: new Date(1000).toISOString() })
  t.equal(changes.length, 0)
  tick()
  plugins.a.state = 'running'
  fallbacks.refresh('a')
  fallbacks.refresh('a')
  t.match(changes, [{ plugin: 'a', from: 'auto', to: 'inactive', at: 2000, actor: null }], 'one event for one change')
  t.equal(fallbacks.view('a').since, new Date(2000).toISOString())
  plugins.a.circuit = 'half-open'
  fallbacks.refresh('a')
  t.match(fallbacks.of('a'), { active: true, trialsPass: true }, 'half-open alone: trial calls pass')
  plugins.a.verdict = 'unhealthy'
  fallbacks.refresh('a')
  t.match(fallbacks.of('a'), { active: true, trialsPass: false }, 'unhealthy as well: no trials')
})

t.test('a manual activation outlives a manifest change; a fallback plugin that is unloaded cannot answer', async (t) => {
  const plugins: Record<string, Fake> = {
    a: { state: 'running', verdict: 'healthy', circuit: 'closed', fallback: { plugin: 'b' } },
    b: { state: 'running', verdict: 'healthy', circuit: 'closed' }
  }
  const { fallbacks, changes } = setup(plugins)
  fallbacks.activate('a', undefined, 'ops')
  t.match(fallbacks.of('a'), { active: true, buffersBody: true, canAnswer: true })
  // A changed manifest: unloaded and loaded again while the plugin stays.
  plugins.a.fallback = { status: 200, body: 'cached' }
  fallbacks.unloaded('a')
  fallbacks.loaded('a')
  t.match(fallbacks.view('a'), { active: true, mode: 'manual', target: { status: 200, body: 'cached' } }, 'manual stays, the new manifest\'s fallback answers')
  fallbacks.deactivate('a', 'ops')
  plugins.a.fallback = { plugin: 'b' }
  fallbacks.unloaded('a')
  fallbacks.loaded('a')
  t.match(fallbacks.view('a'), { active: false, mode: 'auto', target: { plugin: 'b' } })

  plugins.a.state = 'stopped'
  fallbacks.refresh('a')
  t.equal(fallbacks.of('a').active, true)
  const b = plugins.b
  delete plugins.b
  fallbacks.unloaded('b')
  t.match(fallbacks.view('a'), { active: false, reason: /cannot answer/ }, 'its fallback plugin is gone')
  t.equal(fallbacks.of('a').canAnswer, false, 'and failed calls are not sent there either')
  plugins.b = b
  fallbacks.loaded('b')
  t.equal(fallbacks.of('a').active, true, 'back once it is loaded again')
  t.match(changes.map((c) => `${c.from}>${c.to}`), ['inactive>manual', 'manual>manual', 'manual>inactive', 'inactive>auto', 'auto>inactive', 'inactive>auto'])
})
