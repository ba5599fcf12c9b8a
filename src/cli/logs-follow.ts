// plugvisor logs NAME -f: the last lines, then every line the plugin prints, until Ctrl-C.
import type { Static } from '@sinclair/typebox'
import type { LogLineBody } from '../process/log-ring.js'
import { openEventStream } from './event-stream-client.js'

export function formatLogLine (l: Static<typeof LogLineBody>): string {
  return `${l.at} ${l.stream === 'stderr' ? 'ERR' : 'OUT'} ${l.line}\n`
}

/** Follows until Ctrl-C (exit 0) or until the daemon ends the stream (exit 1: unloaded, or the daemon stopped). */
export async function followLogs (name: string, tail: string): Promise<number> {
  const q = new URLSearchParams({ follow: 'true', tail })
  const stream = await openEventStream(`/plugins/${encodeURIComponent(name)}/logs?${q}`, (e) => {
    if (e.event === 'line') process.stdout.write(formatLogLine(JSON.parse(e.data)))
  })
  let interrupted = false
  const onSignal = (): void => {
    interrupted = true
    stream.close()
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    await stream.done
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  if (interrupted) return 0
  process.stderr.write(`plugvisor: the daemon ended the log stream of ${name} (unloaded, or the daemon stopped)\n`)
  return 1
}
