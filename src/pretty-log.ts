// The daemon's own log for people: on a terminal, pino's JSON lines become
// `14:02:03.123 INFO  message  key=value ...` (colored), with an error's stack below its line.
// Anywhere else (a pipe, a file, journald, a container log) it stays one JSON object a line,
// for machines. Written here rather than taken from pino-pretty: a 60-line formatter against
// 13 more packages in the daemon's start-up and install.
import { LOG_FORMATS } from './config/schema.js'

export type LogFormat = typeof LOG_FORMATS[number]

/** What `log.format` means for this stdout: auto is pretty on a terminal only. */
export function logFormatFor (format: LogFormat, isTTY: boolean): 'json' | 'pretty' {
  return format === 'auto' ? (isTTY ? 'pretty' : 'json') : format
}

const LEVELS: Record<number, [name: string, color: string]> = {
  10: ['TRACE', '90'], 20: ['DEBUG', '36'], 30: ['INFO ', '32'], 40: ['WARN ', '33'], 50: ['ERROR', '31'], 60: ['FATAL', '35']
}
/** Fields every line has, or that say nothing to a person at a terminal. */
const SHOWN_ELSEWHERE = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'err'])

const paint = (color: boolean, code: string, text: string): string => color ? `\x1b[${code}m${text}\x1b[0m` : text

function fieldValue (v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)
  return JSON.stringify(v)
}

/** One pino JSON line (without or with its newline) as a line for people; what is not JSON is passed through. */
export function prettyLine (json: string, color: boolean): string {
  let o: Record<string, unknown>
  try {
    o = JSON.parse(json)
  } catch {
    return json.endsWith('\n') ? json : json + '\n'
  }
  const time = typeof o.time === 'number' ? new Date(o.time) : new Date()
  const clock = `${String(time.getHours()).padStart(2, '0')}:${String(time.getMinutes()).padStart(2, '0')}:${String(time.getSeconds()).padStart(2, '0')}.${String(time.getMilliseconds()).padStart(3, '0')}`
  const [name, code] = LEVELS[o.level as number] ?? [String(o.level).padEnd(5), '0']
  const fields = Object.entries(o).filter(([k, v]) => !SHOWN_ELSEWHERE.has(k) && v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${fieldValue(v)}`).join(' ')
  const err = o.err as { message?: string, stack?: string } | string | undefined
  const stack = typeof err === 'object' && err !== null ? (err.stack ?? err.message) : err
  return `${paint(color, '90', clock)} ${paint(color, code, name)} ${String(o.msg ?? '')}${fields ? '  ' + paint(color, '90', fields) : ''}\n` +
    (stack ? `${String(stack).replace(/^/gm, '    ')}\n` : '')
}

/** A pino destination that writes pretty lines to `out` (a terminal). */
export function prettyDestination (out: { write: (s: string) => unknown }, color: boolean): { write: (chunk: string) => void } {
  return { write: (chunk) => { out.write(prettyLine(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk, color)) } }
}
