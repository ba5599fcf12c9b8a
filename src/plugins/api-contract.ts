// What every route answers besides its own results, added to the OpenAPI document in one place
// from the same facts the hooks decide by (src/route-kind.ts, the body limit, the auth rules):
// 401/403 and the bearer scheme, 400/404/413/414/415/429/500/504 where they can happen, invoke's
// pass-through answers, operation ids, and query parameters with a default that are not required.
// It only describes: the hooks and the error handler give these answers whatever the document says.
import { routeKind } from '../route-kind.js'

const ERROR_SCHEMA = { $ref: '#/components/schemas/ErrorResponse' }
/** A route schema key (fastify-swagger copies x-* keys into the operation): the body may be left out. */
export const OPTIONAL_BODY = 'x-optional-body'
const BODY_METHODS = new Set(['post', 'put', 'patch', 'delete', 'options'])
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options']
const BULK = /^\/plugins\/(start|stop|restart)$/
/** fastify-swagger writes Fastify's wildcard as the parameter `*`; OpenAPI paths name it. */
const WILDCARD = '{*}'
const WILDCARD_NAME = 'path'

interface Parameter { in: string, name: string, required?: boolean, description?: string, schema?: { default?: unknown } & Record<string, unknown> }
interface Operation {
  operationId?: string
  parameters?: Parameter[]
  requestBody?: { required?: boolean }
  [OPTIONAL_BODY]?: boolean
  responses?: Record<string, unknown>
  security?: Record<string, string[]>[]
}
interface Document { paths?: Record<string, Record<string, Operation>>, components?: Record<string, unknown>, [k: string]: unknown }

const errorAnswer = (description: string): object => ({ description, content: { 'application/json': { schema: ERROR_SCHEMA } } })

/** The Fastify route pattern of an OpenAPI path (what routeKind knows). */
const routeOf = (path: string): string => path.replace(WILDCARD, '*').replace(/\{([^}]+)\}/g, ':$1')

const operationId = (method: string, path: string): string => method + path.split(/[/{}*-]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('')

function describe (path: string, method: string, op: Operation): void {
  const kind = routeKind(routeOf(path))
  const r = (op.responses ??= {})
  const add = (status: string, description: string): void => { r[status] ??= errorAnswer(description) }
  const hasParams = (op.parameters ?? []).length > 0
  const pathParams = (op.parameters ?? []).some((p) => p.in === 'path')
  op.operationId ??= operationId(method, path)
  if (op[OPTIONAL_BODY] === true && op.requestBody !== undefined) op.requestBody.required = false
  delete op[OPTIONAL_BODY]

  if (kind === 'docs') {
    op.security = []
  } else {
    // With auth.mode none (the default on loopback) no token is needed; with tokens, a bearer token.
    op.security = [{}, { bearer: [] }]
    const open = kind === 'probe' ? ' and auth.openProbes is false' : kind === 'metrics' ? ' and auth.openMetrics is false' : ''
    add('401', `PLUGVISOR_UNAUTHORIZED: no valid bearer token, with auth.mode tokens${open}`)
    if (method !== 'get' && method !== 'head') add('403', 'PLUGVISOR_FORBIDDEN: a viewer token on a route that changes something')
    else if (kind === 'audit') add('403', 'PLUGVISOR_FORBIDDEN: the audit log needs an admin token')
  }
  if (hasParams || op.requestBody !== undefined) add('400', 'PLUGVISOR_VALIDATION: a parameter or the body does not match the schema')
  if (pathParams) {
    add('404', 'PLUGVISOR_PLUGIN_NOT_FOUND: the plugin is not loaded')
    add('414', "PLUGVISOR_URI_TOO_LONG: a path parameter is over the router's limit")
  }
  if (BODY_METHODS.has(method)) {
    add('413', 'PLUGVISOR_PAYLOAD_TOO_LARGE: the body is over 1 MiB')
    if (kind !== 'invoke') add('415', 'PLUGVISOR_UNSUPPORTED_MEDIA_TYPE: a body that is not application/json')
  }
  if (kind === 'management' || kind === 'audit') add('429', 'PLUGVISOR_RATE_LIMITED: over rateLimit.max calls in rateLimit.windowMs; Retry-After says when to come back')
  if (BULK.test(path) && !path.endsWith('/stop')) add('504', 'PLUGVISOR_WAIT_TIMEOUT: ?wait=healthy ran out of timeoutMs')
  add('500', 'PLUGVISOR_INTERNAL: a bug; the message is hidden, the log has the details')
  if (kind === 'invoke') {
    const passThrough = { description: "The plugin's own answer: its status, headers and body as it sent them", content: { '*/*': { schema: {} } } }
    r['200'] ??= passThrough
    r.default ??= passThrough
  }
  // A query parameter with a default may be left out: the default fills it in.
  for (const p of op.parameters ?? []) if (p.in === 'query' && p.schema?.default !== undefined) delete p.required
}

/** fastify-swagger's transformObject: the document with every answer of every route. */
export function completeContract ({ openapiObject }: { openapiObject: Partial<Document> }): Document {
  const doc = openapiObject as Document
  const paths: Record<string, Record<string, Operation>> = {}
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const named = path.replace(WILDCARD, `{${WILDCARD_NAME}}`)
    for (const method of METHODS) {
      const op = item[method]
      if (op === undefined) continue
      // The wildcard is a parameter only where the path has it; there it is required and named.
      op.parameters = (op.parameters ?? []).flatMap((p) => {
        if (p.in !== 'path' || p.name !== '*') return [p]
        if (named === path) return []
        return [{ ...p, name: WILDCARD_NAME, required: true, description: 'The path forwarded to the plugin; a validating proxy matches one segment, the daemon any number' }]
      })
      describe(named, method, op)
    }
    paths[named] = item
  }
  doc.paths = paths
  doc.components = {
    ...doc.components,
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'With auth.mode tokens: a viewer token for GET and HEAD, an admin token for everything else and for GET /audit. With auth.mode none no token is needed' }
    }
  }
  return doc
}
