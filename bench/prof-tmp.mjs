import { Pool } from 'undici'
import { startDaemon, writeConfig, sleepPlugin, nowMs, stopProcess, sleep, trackStray, cleanup } from './lib.js'
const N = 500
const d = await startDaemon(writeConfig(Array.from({ length: N }, (_, i) => sleepPlugin(`p${i}`))), { name: 'prof' })
const pool = new Pool(d.base, { connections: 2 })
const api = async (method, url) => { const r = await pool.request({ method, path: url }); const b = await r.body.json(); if (r.statusCode !== 200) throw new Error(JSON.stringify(b)); return b }
const windows = []
const what = process.argv[2] ?? 'stop'
for (let i = 0; i < 4; i++) {
  const s0 = nowMs()
  const { plugins } = await api('POST', '/plugins/start?all=true')
  console.log('start', Math.round(nowMs() - s0)); if (what === 'start') windows.push([s0 * 1000, nowMs() * 1000])
  for (const p of plugins) trackStray(p.pid)
  await sleep(300)
  if (what === 'stop') await api('POST', '/health/liveness'.replace('POST', '')).catch(() => {})
  const t0 = nowMs()
  await api('POST', '/plugins/stop?all=true')
  console.log('stop', Math.round(nowMs() - t0)); if (what === 'stop') windows.push([t0 * 1000, nowMs() * 1000])
  await sleep(300)
}
(await import('node:fs')).writeFileSync('/tmp/sp/windows.json', JSON.stringify(windows)); await pool.close(); await stopProcess(d.child); cleanup()
