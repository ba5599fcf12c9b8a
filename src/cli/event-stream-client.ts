// The CLI's reader of the daemon's server-sent events (GET /events, GET /plugins/:name/logs?follow=true).
import type { ClientRequest, IncomingMessage } from 'node:http'
import cli from '../cli.cjs'
const { apiBase, CliError } = cli

export interface StreamEvent { event: string, data: string }

export interface OpenStream {
  /** Resolves when the daemon ends the stream (or it broke). */
  done: Promise<void>
  /** Leaves the stream (the command is done). */
  close: () => void
}

/** Splits a text/event-stream into events; comments (keep-alives) are skipped. */
export function eventParser (onEvent: (e: StreamEvent) => void): (chunk: string) => void {
  let buf = ''
  return (chunk) => {
    buf += chunk
    let end
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end)
      buf = buf.slice(end + 2)
      let event = 'message'
      const data: string[] = []
      for (const row of block.split('\n')) {
        if (row.startsWith('event: ')) event = row.slice(7)
        else if (row.startsWith('data: ')) data.push(row.slice(6))
      }
      if (data.length > 0) onEvent({ event, data: data.join('\n') })
    }
  }
}

/** Opens an event stream; resolves once the daemon answered 200, rejects (CliError) when it cannot be opened. */
export async function openEventStream (path: string, onEvent: (e: StreamEvent) => void): Promise<OpenStream> {
  const base = apiBase()
  const url = new URL(base + path)
  const headers: Record<string, string> = { accept: 'text/event-stream' }
  if (process.env.PLUGVISOR_TOKEN) headers.authorization = `Bearer ${process.env.PLUGVISOR_TOKEN}`
  const request: typeof import('node:http').request = url.protocol === 'https:' ? (await import('node:https')).request : (await import('node:http')).request
  let req: ClientRequest | undefined
  let closing = false
  let ended: () => void = () => {}
  const done = new Promise<void>((resolve) => { ended = resolve })
  // Resolves once the daemon answered 200: from then on no event is missed.
  await new Promise<void>((resolve, reject) => {
    req = request(url, { headers }, (res: IncomingMessage) => {
      res.setEncoding('utf8')
      if (res.statusCode !== 200) {
        let text = ''
        res.on('data', (c: string) => { text += c })
        res.on('end', () => {
          let body: { code?: string, message?: string } = {}
          try { body = JSON.parse(text) } catch {}
          reject(new CliError(`${res.statusCode} ${body.code ?? ''}: ${body.message ?? text.slice(0, 200)}`))
        })
        return
      }
      res.on('data', eventParser(onEvent))
      res.on('end', ended)
      res.on('close', ended)
      res.on('error', ended)
      resolve()
    })
    req.on('error', (err: Error) => {
      ended()
      if (!closing) reject(new CliError(`cannot reach plugvisor at ${base}: ${err.message}`))
    })
    req.end()
  })
  return {
    done,
    close: () => {
      closing = true
      req?.destroy()
    }
  }
}
