// The call policies without HTTP: the breaker counts each call once (after its retries) in the
// direct path taken while the circuit is closed exactly as through cockatiel, and opens on the
// failure that reaches the threshold, whatever the failure (5xx answer, connection error, timeout).
import t from 'tap'
import { Value } from '@sinclair/typebox/value'
import { Resilience } from '../src/config/schema.js'
import { buildPolicies, type Upstream } from '../src/invoke/policies.js'
import type { CircuitChange } from '../src/invoke/circuit.js'

const resilience = (extra: Record<string, unknown>) => Value.Default(Resilience, structuredClone(extra)) as ReturnType<typeof buildPolicies>['resilience']
const answer = (statusCode: number): Upstream => ({ statusCode, headers: {}, body: Buffer.alloc(0) })
const refused = (): Error => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })

function policies (t: { teardown: (f: () => void) => void }, extra: Record<string, unknown>) {
  const changes: CircuitChange[] = []
  const p = buildPolicies(resilience(extra), { onCircuitChange: (c) => changes.push(c), timeoutError: () => new Error('timed out (test)') })
  t.teardown(() => p.dispose())
  return { p, changes }
}

t.test('a success resets the consecutive count; the failure that reaches it opens the circuit, with its reason', async (t) => {
  const { p, changes } = policies(t, { retry: { maxAttempts: 0 }, circuitBreaker: { consecutiveFailures: 2 } })
  t.equal((await p.call('POST', async () => answer(500))).statusCode, 500, 'a 5xx answer passes on')
  t.equal(p.circuit().failures, 1)
  t.equal((await p.call('POST', async () => answer(200))).statusCode, 200)
  t.equal(p.circuit().failures, 0, 'a success resets the count')
  await t.rejects(p.call('POST', async () => { throw refused() }), { code: 'ECONNREFUSED' }, 'a connection error passes on')
  t.equal(p.state(), 'closed')
  await t.rejects(p.call('POST', async () => { throw refused() }), { code: 'ECONNREFUSED' })
  t.equal(p.state(), 'open', 'the second failure in a row opens it')
  t.match(changes, [{ from: 'closed', to: 'open', reason: /2 consecutive failures \(last: connect ECONNREFUSED/ }])
  t.equal(p.circuit().lastFailure, 'connect ECONNREFUSED 127.0.0.1:1')
  t.ok(p.refusesCalls(), 'calls are refused while open')
})

t.test('an attempt past timeoutMs fails with the timeout error and counts as a failure', async (t) => {
  const { p } = policies(t, { timeoutMs: 20, retry: { maxAttempts: 0 }, circuitBreaker: { consecutiveFailures: 1 } })
  await t.rejects(p.call('GET', (deadline) => new Promise((_resolve, reject) => deadline.addEventListener('abort', () => reject(deadline.reason)))), { message: 'timed out (test)' })
  t.equal(p.state(), 'open')
  t.equal(p.circuit().lastFailure, 'timed out (test)')
})

t.test('idempotent calls are retried after connection errors and 5xx answers, then counted once', async (t) => {
  const { p } = policies(t, { retry: { maxAttempts: 2, initialDelayMs: 1 }, circuitBreaker: { consecutiveFailures: 2 } })
  let n = 0
  const flaky = async (): Promise<Upstream> => { n++; if (n === 1) throw refused(); return n === 2 ? answer(503) : answer(200) }
  t.equal((await p.call('GET', flaky)).statusCode, 200)
  t.equal(n, 3, 'a connection error, a 5xx, then the answer')
  t.equal(p.circuit().failures, 0, 'the call succeeded in the end')
  n = 0
  t.equal((await p.call('GET', async () => { n++; return answer(500) })).statusCode, 500, 'retries spent: the last answer')
  t.equal(n, 3)
  t.equal(p.circuit().failures, 1, 'counted once')
  n = 0
  t.equal((await p.call('POST', async () => { n++; return answer(500) })).statusCode, 500)
  t.equal(n, 1, 'POST is not retried')
  t.equal(p.state(), 'open', 'the second counted failure opens it')
  await t.rejects(p.call('GET', async () => { throw new Error('not a connection error') }), { message: /circuit breaker is open/ }, 'open: refused by the breaker')
})
