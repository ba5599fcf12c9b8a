import { Pool } from 'undici'
import { startDaemon, writeConfig, sleepPlugin, stopProcess, sleep, trackStray, cleanup, plugvisorPids, procStatusKb } from './lib.js'
const N = 500
const out = {}
for (const k of ['native', 'node']) {
  process.env.PLUGVISOR_SPAWNER = k
  const d = await startDaemon(writeConfig(Array.from({ length: N }, (_, i) => sleepPlugin(`p${i}`))), { name: k })
  const pool = new Pool(d.base, { connections: 2 })
  const show = (phase) => plugvisorPids(d.child.pid).map((pid) => `${pid === d.child.pid ? 'daemon' : 'spawner'} rss ${Math.round(procStatusKb(pid, 'VmRSS') / 1024)} hwm ${Math.round(procStatusKb(pid, 'VmHWM') / 1024)}`).join(', ') + ' @' + phase
  console.log(k, show('listening'))
  const r = await pool.request({ method: 'POST', path: '/plugins/start?all=true' }); const b = await r.body.json()
  for (const p of b.plugins) trackStray(p.pid)
  await sleep(3000)
  console.log(k, show('500 running'))
  await (await pool.request({ method: 'POST', path: '/plugins/stop?all=true' })).body.dump()
  await pool.close(); await stopProcess(d.child)
}
cleanup()
