// What a route is, by its pattern: the one place that knows which routes are probes, metrics,
// the API description, the dashboard's files, the invoke proxy or the audit log. Auth, rate limits and the audit log
// decide from this.
export type RouteKind = 'probe' | 'metrics' | 'docs' | 'ui' | 'invoke' | 'audit' | 'management'

export function routeKind (route: string | undefined): RouteKind {
  if (route === undefined) return 'management'
  if (route === '/health' || route.startsWith('/health/')) return 'probe'
  if (route === '/metrics') return 'metrics'
  if (route === '/docs' || route.startsWith('/docs/')) return 'docs'
  if (route === '/ui' || route.startsWith('/ui/')) return 'ui'
  if (route.startsWith('/plugins/:name/invoke')) return 'invoke'
  if (route === '/audit') return 'audit'
  return 'management'
}
