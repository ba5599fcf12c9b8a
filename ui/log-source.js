// Where the plugin page's live log lines come from: the one place to change when the API can
// stream them (GET /plugins/:name/logs?follow=true as server-sent events would call
// onLines(newLines, { replace: false }) per event instead of polling).
import { api, plugin } from './api.js'

const POLL_MS = 2000
export const TAIL = 200

/**
 * Follows a plugin's output: onLines(lines, { replace }) with lines oldest first; replace means
 * "this is the whole tail now". Returns stop().
 */
export function followLogs (name, { onLines, onError }) {
  let stopped = false
  let timer
  let last = ''
  const poll = async () => {
    try {
      const { lines } = await api(`${plugin(name)}/logs?tail=${TAIL}`)
      // Same newest line and count: nothing new, leave the view (and its selection) alone.
      const key = `${lines.length}|${lines.at(-1)?.at}|${lines.at(-1)?.line}`
      if (!stopped && key !== last) {
        last = key
        onLines(lines, { replace: true })
      }
    } catch (err) {
      if (!stopped) onError(err)
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS)
  }
  void poll()
  return () => { stopped = true; clearTimeout(timer) }
}
