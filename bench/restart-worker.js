// A process that keeps one `sleep 3600` alive and reports over IPC, with the monotonic clock
// (CLOCK_MONOTONIC, shared by every process), when each new process runs:
//   node restart-worker.js plugvisor CONFIG   the real supervisor (createDaemon), reported at its
//                                             `transition` to running
//   node restart-worker.js bare               a minimal respawner: child 'exit' -> spawn again,
//                                             reported at the child's 'spawn' event; the child
//                                             spawned as plugvisor spawns it (own process group,
//                                             stdout/stderr piped and read)
//   node restart-worker.js bare-plain         the same with stdio 'ignore' and no group of its own
// The parent SIGKILLs the pid it was told about and times the respawn.
import { spawn } from 'node:child_process'

const [mode, configFile] = process.argv.slice(2)
const report = (pid) => {
  const t = process.hrtime.bigint().toString()
  process.send({ type: 'running', pid, t })
}

if (mode === 'bare' || mode === 'bare-plain') {
  const opts = mode === 'bare' ? { detached: true, stdio: ['ignore', 'pipe', 'pipe'] } : { stdio: 'ignore' }
  let child
  const start = () => {
    child = spawn('sleep', ['3600'], opts)
    if (child.stdout) { child.stdout.resume(); child.stderr.resume() }
    child.once('spawn', () => report(child.pid))
    child.once('exit', start)
  }
  start()
  process.on('disconnect', () => {
    child.removeAllListeners('exit')
    child.kill('SIGKILL')
    process.exit(0)
  })
} else if (mode === 'plugvisor') {
  const { loadConfig } = await import('../dist/src/config/load.js')
  const { createDaemon } = await import('../dist/src/daemon.js')
  const { default: pino } = await import('pino')
  const loaded = loadConfig(configFile)
  // The daemon's own logger at its configured level (warn), to stdout as `serve` does.
  const logger = pino({ level: loaded.config.log.level })
  const daemon = createDaemon({ loaded, logger })
  const name = loaded.manifests[0].name
  daemon.supervisor.on('transition', (e) => {
    if (e.plugin !== name || e.to !== 'running') return
    const t = process.hrtime.bigint().toString()
    process.send({ type: 'running', pid: daemon.supervisor.summary(name).pid, t })
  })
  await daemon.boot()
  process.on('disconnect', () => { void daemon.close().then(() => process.exit(0)) })
} else {
  console.error(`unknown mode ${mode}`)
  process.exit(2)
}
