// The only place that creates Fastify, listens, and handles signals.
import { createServer } from 'node:http'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import closeWithGrace from 'close-with-grace'
import type { DestinationStream } from 'pino'
import app, { type AppOptions } from './app.js'
import { errors, problemsOf } from './errors.js'
import { errorBody } from './plugins/error-handler.js'
import { isLoopback } from './loopback.js'
import { lazyCompilers } from './lazy-compilers.js'
import { requestIds } from './request-id.js'
import { hostCheck } from './plugins/browser-guard.js'
import { requiredRole } from './auth/tokens.js'
import { LIVENESS_PATH } from './health/liveness.js'
import { LivenessShortcut } from './liveness-shortcut.js'
import type { LoadedConfig } from './config/load.js'
import { logFormatFor, prettyDestination, type LogFormat } from './pretty-log.js'

export const BODY_LIMIT = 1024 * 1024

/** The signals that shut the daemon down. */
const SHUTDOWN_SIGNALS: readonly string[] = ['SIGTERM', 'SIGINT']
/** Signals whose default action would end the daemon without a shutdown: logged and ignored. */
const IGNORED_SIGNALS = ['SIGUSR2', 'SIGQUIT'] as const
/** Every signal close-with-grace 2.x listens for unless skipped. */
const CLOSE_WITH_GRACE_SIGNALS = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGSEGV', 'SIGUSR2', 'SIGTERM'] as const

export type ServerOptions = AppOptions & {
  /** Fastify's logger option; default: pino at the configured level. */
  logger?: boolean | object
  /** Write the log (at the configured level) here instead of stdout. */
  logStream?: DestinationStream
}

export async function buildServer (opts: ServerOptions): Promise<FastifyInstance> {
  const { config } = opts.loaded
  const level = config.log.level
  const requestId = requestIds()
  const shortcut = new LivenessShortcut()
  const fastify = Fastify({
    // logStream: the configured level, written somewhere else than stdout (tests capture it).
    logger: opts.logger ?? (opts.logStream ? { level, stream: opts.logStream } : stdoutLogger(level, opts.loaded.config.log.format)),
    bodyLimit: BODY_LIMIT,
    // The caller's x-request-id only when it is sane (src/request-id.ts).
    requestIdHeader: false,
    genReqId: requestId,
    // Only from these peers is X-Forwarded-For believed (req.ip: rate-limit key, audit address).
    trustProxy: opts.loaded.config.server.trustProxy.length > 0 ? opts.loaded.config.server.trustProxy : false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    schemaController: { compilersFactory: lazyCompilers },
    forceCloseConnections: true,
    // Errors the router raises before any route runs (malformed %-encoding, over-long
    // parameters) get the same { statusCode, code, error, message } shape as every other error.
    frameworkErrors: (err, _req, reply) => {
      const e = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? new errors.UriTooLong(err.message) : new errors.Validation(err.message)
      void (reply as FastifyReply).code(e.statusCode!).send(errorBody(e.statusCode!, e.code, e.message))
    },
    ...(opts.logger === false ? {} : { childLoggerFactory: lazyRequestLogger }),
    // Fastify's own HTTP server, with the liveness shortcut in front of its handler.
    serverFactory: (handler, options) => {
      const server = createServer((req, res) => { if (!shortcut.answer(req, res)) handler(req, res) })
      // As Fastify sets up the server it makes itself (the options come with its defaults filled in).
      const o = options as { keepAliveTimeout: number, requestTimeout: number, connectionTimeout: number, maxRequestsPerSocket: number }
      server.keepAliveTimeout = o.keepAliveTimeout
      server.requestTimeout = o.requestTimeout
      server.setTimeout(o.connectionTimeout)
      if (o.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = o.maxRequestsPerSocket
      return server
    }
  }).withTypeProvider<TypeBoxTypeProvider>()
  await fastify.register(app, opts)
  // Probes behind a token (auth.openProbes false) go through the framework's token check.
  const probesOpen = config.auth.mode !== 'tokens' || requiredRole('GET', 'probe', config.auth) === 'open'
  if (probesOpen) {
    const { metrics } = fastify.daemon
    const refusedName = hostCheck(config.server)
    fastify.addHook('onReady', async () => {
      shortcut.enable({
        requestId,
        hostRefused: (host) => refusedName(host) !== null,
        observe: (seconds) => { metrics.observeHttpRequest('GET', LIVENESS_PATH, 200, seconds) }
      })
    })
    // From here on the framework answers (503 while it closes).
    fastify.addHook('preClose', async () => { shortcut.disable() })
  }
  return fastify
}

/** pino on stdout: pretty lines on a terminal (log.format auto or pretty), JSON lines otherwise. */
function stdoutLogger (level: string, format: LogFormat): object {
  if (logFormatFor(format, process.stdout.isTTY === true) === 'json') return { level }
  return { level, stream: prettyDestination(process.stdout, process.stdout.isTTY === true && !process.env.NO_COLOR) }
}

// pino's numeric levels.
const LEVEL = { fatal: 60, error: 50, warn: 40, info: 30, debug: 20, trace: 10 } as const
type Level = keyof typeof LEVEL
type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildOptions = Parameters<FastifyBaseLogger['child']>[1]

/**
 * Fastify makes a pino child logger (bound to the request id) for every request: ~0.4 µs and a
 * few objects each, while most requests, every probe route at warn, never write a line. This
 * one makes the pino child only when a line passes its level, so every line still carries the
 * request id. Measured: part of the /health/liveness gain of the commit that added it.
 */
class LazyRequestLogger {
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #opts: ChildOptions
  readonly #min: number
  #real: FastifyBaseLogger | undefined

  constructor (parent: FastifyBaseLogger, bindings: Bindings, opts: ChildOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#opts = opts
    const level = opts?.level ?? parent.level
    // Unknown (custom) or silent levels: let pino decide on every call.
    this.#min = level === 'silent' ? Infinity : LEVEL[level as Level] ?? 0
  }

  #get (): FastifyBaseLogger {
    this.#real ??= this.#parent.child(this.#bindings, this.#opts)
    return this.#real
  }

  #log (level: Level, args: unknown[]): void {
    if (LEVEL[level] < this.#min) return
    const real = this.#get()
    ;(real[level] as (...a: unknown[]) => void).apply(real, args)
  }

  get level (): string { return this.#real?.level ?? this.#opts?.level ?? this.#parent.level }
  set level (level: string) { this.#get().level = level }
  fatal (...args: unknown[]): void { this.#log('fatal', args) }
  error (...args: unknown[]): void { this.#log('error', args) }
  warn (...args: unknown[]): void { this.#log('warn', args) }
  info (...args: unknown[]): void { this.#log('info', args) }
  debug (...args: unknown[]): void { this.#log('debug', args) }
  trace (...args: unknown[]): void { this.#log('trace', args) }
  silent (): void {}
  child (bindings: Bindings, opts?: ChildOptions): FastifyBaseLogger { return this.#get().child(bindings, opts) }
}

function lazyRequestLogger (logger: FastifyBaseLogger, bindings: Bindings, opts: ChildOptions): FastifyBaseLogger {
  return new LazyRequestLogger(logger, bindings, opts) as unknown as FastifyBaseLogger
}

/**
 * Why the daemon must not listen as configured, if it must not: beyond loopback, an open API
 * (auth.mode none) needs saying so in the config.
 */
export function listenRefusal (loaded: LoadedConfig): string | undefined {
  const { host } = loaded.config.server
  if (!isLoopback(host) && loaded.config.auth.mode === 'none' && !loaded.authModeExplicit) {
    return `refusing to listen on ${host} with an open API: configure auth.mode: tokens, or write auth.mode: none to accept an open API, or listen on 127.0.0.1`
  }
  return undefined
}

/**
 * Runs the daemon until SIGTERM/SIGINT: stop taking requests, stop plugins, flush, close.
 * SIGHUP reloads the config (as POST /config/reload) instead of shutting down.
 */
export async function serve (loaded: LoadedConfig): Promise<FastifyInstance> {
  const refusal = listenRefusal(loaded)
  if (refusal) throw new Error(refusal)
  // Plugins start only once the API listens: a daemon that cannot listen leaves nothing running.
  const fastify = await buildServer({ loaded, boot: false })
  const { host, port } = loaded.config.server
  const onHangup = (): void => {
    fastify.log.info({ signal: 'SIGHUP' }, 'reloading the config (SIGHUP)')
    const started = Date.now()
    const audit = (status: number): void => {
      fastify.recordAudit({ at: started, actor: 'signal', role: null, remote: null, method: 'SIGHUP', route: '/config/reload', url: '/config/reload', plugin: null, status, requestId: 'SIGHUP', durationMs: Date.now() - started })
    }
    // The reload logs what it applied; a refused one (invalid main config) changes nothing.
    fastify.daemon.changes.reload({ trigger: 'signal' }).then(() => audit(200), (err: Error) => {
      audit(400)
      fastify.log.error({ err, problems: problemsOf(err) }, `reload (SIGHUP) failed, nothing applied: ${err.message}`)
    })
  }
  process.on('SIGHUP', onHangup)
  // Their default action would end the daemon at once and leave every plugin running.
  const onIgnored = (signal: NodeJS.Signals): void => { fastify.log.warn({ signal }, `${signal} ignored: SIGTERM or SIGINT shut plugvisor down, SIGHUP reloads`) }
  for (const sig of IGNORED_SIGNALS) process.on(sig, onIgnored)
  fastify.addHook('onClose', async () => {
    process.off('SIGHUP', onHangup)
    for (const sig of IGNORED_SIGNALS) process.off(sig, onIgnored)
  })
  // Only SIGTERM and SIGINT shut down (SIGHUP reloads); close-with-grace would also take SIGUSR2,
  // SIGQUIT and the fault signals. A second one during the shutdown SIGKILLs every plugin's group
  // still running, then exits.
  const grace = closeWithGrace({
    delay: 60000,
    logger: fastify.log,
    skip: CLOSE_WITH_GRACE_SIGNALS.filter((s) => !SHUTDOWN_SIGNALS.includes(s)),
    onSecondSignal: (signal) => {
      fastify.log.error({ signal }, `second ${signal} during shutdown: killing every plugin still running and exiting`)
      fastify.daemon.supervisor.killAllNow()
    }
  }, async ({ signal, err }) => {
    if (err) fastify.log.error({ err }, 'daemon shutdown after an error: stopping plugins')
    else fastify.log.info({ signal }, `daemon shutdown (${signal}): stopping plugins`)
    await fastify.close()
    fastify.log.info('daemon shutdown: done')
  })
  let address: string
  try {
    address = await fastify.listen({ host, port })
  } catch (err) {
    grace.uninstall()
    await fastify.close()
    throw err
  }
  fastify.log.info({ address, dataDir: loaded.dataDir, config: loaded.file, plugins: fastify.daemon.supervisor.names().length }, `daemon start: listening on ${address}`)
  void fastify.daemon.boot().catch((err) => fastify.log.error({ err }, 'boot failed'))
  return fastify
}
