// Numbers and times as an operator reads them.

/** 93 s -> "1m 33s"; two units at most. */
export function duration (ms) {
  if (ms === null || ms === undefined || ms < 0) return '–'
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${s % 60}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h ${m % 60}m`
  return `${Math.floor(h / 24)}d ${h % 24}h`
}

/** Uptime of a summary, now (its uptimeMs is as of the answer). */
export function uptime (summary, now = Date.now()) {
  if (summary.state !== 'running' || !summary.startedAt) return '–'
  return duration(now - Date.parse(summary.startedAt))
}

export function bytes (n) {
  if (n === null || n === undefined) return '–'
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`
}

export function ms (v) {
  if (v === null || v === undefined) return '–'
  return v < 10 ? `${v.toFixed(2)} ms` : v < 100 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`
}

export function percent (rate) {
  return rate === null || rate === undefined ? '–' : `${(rate * 100).toFixed(rate === 1 || rate === 0 ? 0 : 1)} %`
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
const dayClock = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false })

/** An ISO time as a local clock time, with the date when it is not today. */
export function time (iso) {
  if (!iso) return '–'
  const d = new Date(iso)
  return d.toDateString() === new Date().toDateString() ? clock.format(d) : dayClock.format(d)
}

export function lastExit (exit) {
  if (!exit) return '–'
  return exit.signal ? exit.signal : `code ${exit.code}`
}
