// The logging the domain code needs: pino's shape, without tying domain code to pino or Fastify.
export interface LogFn {
  (obj: object, msg?: string): void
  (msg: string): void
}
export interface Logger {
  error: LogFn
  warn: LogFn
  info: LogFn
  debug: LogFn
  child: (bindings: Record<string, unknown>) => Logger
}
