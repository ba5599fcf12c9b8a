// Talking to the daemon's API: the bearer token (this tab's session storage only), JSON calls,
// and the event stream. EventSource cannot send an Authorization header, so GET /events is read
// with fetch() and a stream reader, which sends the same header as every other call.

const TOKEN_KEY = 'plugvisor.token'

export class ApiError extends Error {
  constructor (status, body) {
    super(body?.message ?? `HTTP ${status}`)
    this.status = status
    this.code = body?.code
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY)
}

/** Called with the failed call's error when the API answers 401 (no token, or a wrong one). */
let onUnauthorized = () => {}
export function whenUnauthorized (fn) { onUnauthorized = fn }

function headers () {
  const t = token.get()
  return t ? { authorization: `Bearer ${t}` } : {}
}

/** One API call; resolves with the parsed JSON body, rejects with an ApiError. */
export async function api (path, { method = 'GET', signal } = {}) {
  const res = await fetch(path, { method, headers: headers(), signal, cache: 'no-store' })
  const body = res.headers.get('content-type')?.includes('json') ? await res.json() : null
  if (!res.ok) {
    const err = new ApiError(res.status, body)
    if (res.status === 401) onUnauthorized(err)
    throw err
  }
  return body
}

export const plugin = (name) => `/plugins/${encodeURIComponent(name)}`

/**
 * Follows GET /events until stopped: onEvent(type, data) per event, onState('live' |
 * 'reconnecting' | 'unauthorized') on each change, onOpen() each time the stream (re)opens —
 * the time to re-read what may have been missed, since the stream has no replay.
 * Returns stop().
 */
export const followEvents = (handlers) => followStream('/events', handlers)

/** Follows any server-sent events path of the API (GET /events, a plugin's log follow) the same way. */
export function followStream (path, { onEvent, onState, onOpen }) {
  const state = { stopped: false }
  let controller
  let delay = 500
  const run = async () => {
    while (!state.stopped) {
      controller = new AbortController()
      try {
        const res = await fetch(path, { headers: { ...headers(), accept: 'text/event-stream' }, signal: controller.signal, cache: 'no-store' })
        if (res.status === 401) {
          onState('unauthorized')
          onUnauthorized(new ApiError(401, null))
          return
        }
        if (!res.ok || res.body === null) throw new ApiError(res.status, null)
        onState('live')
        delay = 500
        onOpen()
        await readEvents(res.body, onEvent)
      } catch (err) {
        if (state.stopped) return
        if (err.name !== 'AbortError') console.warn('event stream:', err.message)
      }
      if (state.stopped) return
      onState('reconnecting')
      await new Promise((resolve) => setTimeout(resolve, delay))
      delay = Math.min(delay * 2, 10000)
    }
  }
  void run()
  return () => { state.stopped = true; controller?.abort() }
}

/** Parses text/event-stream from a byte stream: blocks separated by a blank line, comments skipped. */
async function readEvents (body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let end
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let type = 'message'
      let data = ''
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) type = line.slice(6).trim()
        else if (line.startsWith('data:')) data += line.slice(5).trim()
      }
      if (data !== '') {
        try {
          onEvent(type, JSON.parse(data))
        } catch (err) {
          console.warn('event stream: unreadable event', err)
        }
      }
    }
  }
}
