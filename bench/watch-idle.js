// CPU of the file watchers, idle: a daemon with 500 manifest files in its plugins folder (the
// folder and the main config watched) and a watch path on each plugin's own folder (500 more
// watched folders), nothing changing. The plugins are not started, so what the daemon spends
// is the watching; the window starts once it answers and has settled. Prints one JSON object.
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { cleanup, exitAfter, nowMs, round, sleep, sleepPlugin, startDaemon, stopProcess, until, writeConfig, plugvisorCpuSeconds } from './lib.js'

const plugins = Number(process.argv[2] ?? 500)
const settleSeconds = Number(process.argv[3] ?? 5)
const windowSeconds = Number(process.argv[4] ?? 20)
exitAfter('watch-idle', (settleSeconds + windowSeconds + 60) * 1000, cleanup)

const config = writeConfig([], { watch: { enabled: true, debounceMs: 300 } })
const dir = path.dirname(config)
mkdirSync(path.join(dir, 'plugins.d'))
for (let i = 0; i < plugins; i++) {
  const name = `p${String(i).padStart(3, '0')}`
  const work = path.join(dir, 'work', name)
  mkdirSync(work, { recursive: true })
  writeFileSync(path.join(work, 'app.js'), '')
  writeFileSync(path.join(dir, 'plugins.d', `${name}.json`), JSON.stringify(sleepPlugin(name, { cwd: work, watch: { paths: ['*.js'] } })))
}
const { child: daemon, base } = await startDaemon(config, { name: 'plugvisor daemon', timeoutMs: 60000 })
try {
  await until(async () => (await fetch(`${base}/health/readiness`).catch(() => null))?.ok === true, 60000, 'the daemon to be ready')
  await sleep(settleSeconds * 1000)
  const cpu0 = plugvisorCpuSeconds(daemon.pid)
  const w0 = nowMs()
  await sleep(windowSeconds * 1000)
  const percent = (plugvisorCpuSeconds(daemon.pid) - cpu0) / ((nowMs() - w0) / 1000) * 100
  process.stdout.write(JSON.stringify({ plugins, watchedFolders: plugins + 1, windowSeconds, cpuPercentOfOneCore: round(percent, 3) }) + '\n')
} finally {
  await stopProcess(daemon)
  cleanup()
}
