#!/usr/bin/env node
import { main } from './cli.js'

main(process.argv.slice(2)).then((code) => {
  // serve answers -1: the daemon keeps running until a signal.
  if (code >= 0) process.exitCode = code
}, (err: Error) => {
  process.stderr.write(`plugvisor: ${err.stack ?? String(err)}\n`)
  process.exitCode = 1
})
