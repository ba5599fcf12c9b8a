// Where the plugin page's live log lines come from: GET /plugins/:name/logs?follow=true, read as
// server-sent events like GET /events (fetch and a stream reader, so the token header goes along).
// Each (re)connect sends the last TAIL lines again, so it replaces what is shown; new lines are
// handed over in batches, not one DOM change per line.
import { followStream, plugin } from './api.js'

export const TAIL = 200
const BATCH_MS = 50

/**
 * Follows a plugin's output: onLines(lines, { replace }) with lines oldest first; replace means
 * "this is the whole tail now". Returns stop().
 */
export function followLogs (name, { onLines, onError }) {
  let pending = []
  let replace = false
  let timer
  const flush = () => {
    timer = undefined
    const lines = pending
    const whole = replace
    pending = []
    replace = false
    onLines(lines, { replace: whole })
  }
  const soon = () => { timer ??= setTimeout(flush, BATCH_MS) }
  const stop = followStream(`${plugin(name)}/logs?follow=true&tail=${TAIL}`, {
    onOpen: () => { pending = []; replace = true; soon() },
    onEvent: (type, line) => { if (type === 'line') { pending.push(line); soon() } },
    onState: (state) => { if (state === 'reconnecting') onError(new Error('the log stream was interrupted; reconnecting')) }
  })
  return () => { stop(); clearTimeout(timer) }
}
