// The answer of GET /health/liveness: the daemon alone, while its event loop runs; never a plugin.
// One place for it: the route (routes/health.ts) and the shortcut in front of the framework
// (src/liveness-shortcut.ts) both answer with this.

export const LIVENESS_PATH = '/health/liveness'

export interface Liveness { status: 'pass', uptimeMs: number }

export function liveness (): Liveness {
  return { status: 'pass', uptimeMs: Math.round(process.uptime() * 1000) }
}
