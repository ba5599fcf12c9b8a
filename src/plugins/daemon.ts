// The daemon's services (supervisor, health, store, invoke proxy, ...) published on the instance.
// Plugins and routes take what they need off `fastify.daemon`; only this file creates it.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { createDaemon, type Daemon, type DaemonOptions } from '../daemon.js'

declare module 'fastify' {
  interface FastifyInstance {
    daemon: Daemon
  }
}

export interface DaemonPluginOptions extends Omit<DaemonOptions, 'logger'> {
  /** Start plugins when the app is ready (tests may boot by hand). Default true. */
  boot?: boolean
}

async function daemonPlugin (fastify: FastifyInstance, opts: DaemonPluginOptions): Promise<void> {
  const { boot, ...options } = opts
  const daemon = createDaemon({ ...options, logger: fastify.log, maxReplayBodyBytes: fastify.initialConfig.bodyLimit })
  fastify.decorate('daemon', daemon)
  fastify.addHook('onClose', async () => { await daemon.close() })
  // Open GET /events and log follow streams would hold the server open: end them before it stops listening.
  fastify.addHook('preClose', async () => {
    daemon.events.close()
    daemon.logFollow.close()
  })
  if (boot !== false) {
    fastify.addHook('onReady', async () => {
      // Boot runs in the background: the API (and liveness) answer while plugins start.
      void daemon.boot().catch((err) => fastify.log.error({ err }, 'boot failed'))
    })
  }
}

export default fp(daemonPlugin, { name: 'daemon', fastify: '5.x' })
