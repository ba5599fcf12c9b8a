// The one error catalogue: a stable PLUGVISOR_* code, a message template and a status each.
// Clients match on `code`; messages may improve over time.
import createError, { type FastifyError } from '@fastify/error'
import type { ConfigProblem } from './config/load.js'

export const errors = {
  PluginNotFound: createError('PLUGVISOR_PLUGIN_NOT_FOUND', "plugin '%s' is not loaded", 404),
  Validation: createError('PLUGVISOR_VALIDATION', '%s', 400),
  InvalidManifest: createError('PLUGVISOR_INVALID_MANIFEST', 'invalid manifest: %s', 400),
  InvalidConfig: createError('PLUGVISOR_INVALID_CONFIG', 'invalid config, nothing applied: %s', 400),
  Conflict: createError('PLUGVISOR_CONFLICT', '%s', 409),
  Unauthorized: createError('PLUGVISOR_UNAUTHORIZED', 'a bearer token is required', 401),
  Forbidden: createError('PLUGVISOR_FORBIDDEN', "role '%s' may not do this", 403),
  CrossOrigin: createError('PLUGVISOR_CROSS_ORIGIN', 'a change from another site is refused (%s)', 403),
  HostNotAllowed: createError('PLUGVISOR_HOST_NOT_ALLOWED', "host '%s' is not this daemon's; add it to server.allowedHosts if it is", 403),
  NotFound: createError('PLUGVISOR_NOT_FOUND', 'no route %s %s', 404),
  RateLimited: createError('PLUGVISOR_RATE_LIMITED', 'too many requests, retry in %s', 429),
  PluginUnavailable: createError('PLUGVISOR_PLUGIN_UNAVAILABLE', "plugin '%s' is not available: %s", 503),
  CircuitOpen: createError('PLUGVISOR_CIRCUIT_OPEN', "the circuit of plugin '%s' is open", 503),
  PluginTimeout: createError('PLUGVISOR_PLUGIN_TIMEOUT', "plugin '%s' did not answer within %s ms", 504),
  /** A lifecycle hook failed (a reload hook: the old config was restored); the message carries the plugin's answer. */
  HookFailed: createError('PLUGVISOR_HOOK_FAILED', "the %s hook of plugin '%s' failed: %s", 502),
  WaitTimeout: createError('PLUGVISOR_WAIT_TIMEOUT', "plugin '%s' did not become %s within %s ms", 504),
  PayloadTooLarge: createError('PLUGVISOR_PAYLOAD_TOO_LARGE', 'request body is too large', 413),
  UriTooLong: createError('PLUGVISOR_URI_TOO_LONG', '%s', 414),
  UnsupportedMediaType: createError('PLUGVISOR_UNSUPPORTED_MEDIA_TYPE', 'Unsupported Media Type: %s', 415),
  /** The operation took effect, but the store could not keep its desired state (a full disk): a daemon restarted now would not keep it. */
  StateNotPersisted: createError('PLUGVISOR_STATE_NOT_PERSISTED', "plugin '%s': %s done, but its desired state could not be saved (%s); it is written again once the store takes writes, and a daemon restarted before that would not keep it", 503),
  EventStreamFull: createError('PLUGVISOR_EVENT_STREAM_FULL', '%s event stream clients are connected already (events.maxClients); retry later', 503),
  /** Start-up only: the data directory was written by a newer plugvisor. */
  DatabaseTooNew: createError('PLUGVISOR_DATABASE_TOO_NEW', '%s: database schema version %s is newer than this plugvisor knows (%s); upgrade plugvisor or use another dataDir', 500),
  /** Start-up only: another daemon holds the data folder (its lock file names a live process). */
  DataDirLocked: createError('PLUGVISOR_DATA_DIR_LOCKED', 'data folder %s is in use by another plugvisor (pid %s, lock file %s): stop that daemon first, or give this one another dataDir', 500),
  Internal: createError('PLUGVISOR_INTERNAL', 'internal error', 500)
} as const

export const ERROR_CODES = Object.values(errors).map((E) => new E().code)

/** A refused manifest or config: the catalogue error plus every problem found (file, JSON path, reason). */
export type ProblemsError = FastifyError & { problems: ConfigProblem[] }

export function withProblems (err: FastifyError, problems: ConfigProblem[]): ProblemsError {
  return Object.assign(err, { problems })
}

/** The problems an error carries, if it is a refused manifest or config. */
export function problemsOf (err: unknown): ConfigProblem[] | undefined {
  const problems = (err as { problems?: unknown } | null)?.problems
  return Array.isArray(problems) ? problems as ConfigProblem[] : undefined
}
