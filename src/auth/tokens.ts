// Bearer tokens with two roles. Tokens come from the environment or a file, never from the
// config text itself; they are compared as SHA-256 digests with timingSafeEqual, so neither the
// content nor the length of a token leaks through response timing.
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { MainConfig, ROLES } from '../config/schema.js'
import type { ConfigProblem } from '../config/load.js'
import type { RouteKind } from '../route-kind.js'

export type Role = typeof ROLES[number]
export interface Principal { name: string, role: Role }

export const MIN_TOKEN_LENGTH = 16

export interface TokenAuth {
  /** Who sent this Authorization header, or undefined (no header, not Bearer, unknown token). */
  authenticate: (authorization: string | undefined) => Principal | undefined
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/**
 * Reads every configured token. Problems (unset variable, unreadable file, a token too short,
 * mode tokens without tokens) name the config file, JSON path and reason.
 */
export function resolveTokens (auth: MainConfig['auth'], opts: { configFile: string, env: NodeJS.ProcessEnv }): { auth?: TokenAuth, problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  const file = opts.configFile
  if (auth.mode !== 'tokens') return { problems }
  if (auth.tokens.length === 0) problems.push({ file, path: '/auth/tokens', reason: 'auth.mode tokens needs at least one token' })
  const known: { principal: Principal, digest: Buffer }[] = []
  auth.tokens.forEach((t, i) => {
    const at = `/auth/tokens/${i}`
    if ((t.tokenEnv === undefined) === (t.tokenFile === undefined)) {
      problems.push({ file, path: at, reason: 'set exactly one of tokenEnv, tokenFile' })
      return
    }
    let token: string | undefined
    if (t.tokenEnv !== undefined) {
      token = opts.env[t.tokenEnv]?.trim()
      if (!token) problems.push({ file, path: `${at}/tokenEnv`, reason: `environment variable ${t.tokenEnv} is not set` })
    } else {
      const f = path.resolve(path.dirname(file), t.tokenFile!)
      try {
        token = readFileSync(f, 'utf8').trim()
      } catch (err) {
        problems.push({ file, path: `${at}/tokenFile`, reason: `cannot read ${f}: ${(err as Error).message}` })
      }
    }
    if (token === undefined || token === '') return
    if (token.length < MIN_TOKEN_LENGTH) {
      problems.push({ file, path: at, reason: `the token of '${t.name}' is shorter than ${MIN_TOKEN_LENGTH} characters` })
      return
    }
    known.push({ principal: { name: t.name, role: t.role }, digest: digest(token) })
  })
  if (problems.length > 0) return { problems }
  return {
    problems,
    auth: {
      authenticate (authorization) {
        if (authorization === undefined) return undefined
        const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
        if (!m) return undefined
        const d = digest(m[1])
        let found: Principal | undefined
        // Every token is compared, found or not: the time does not say which one matched.
        for (const k of known) if (timingSafeEqual(d, k.digest) && found === undefined) found = k.principal
        return found
      }
    }
  }
}

/** What a request to a route of this kind needs: nothing (open), any valid token (read), or an admin token (change). */
export function requiredRole (method: string, kind: RouteKind, auth: Pick<MainConfig['auth'], 'openProbes' | 'openMetrics'>): Role | 'open' {
  switch (kind) {
    case 'probe': if (auth.openProbes) return 'open'; break
    case 'metrics': if (auth.openMetrics) return 'open'; break
    // The API description holds no secrets, and a browser cannot send a bearer token to it.
    case 'docs': return 'open'
    // The dashboard's files hold no data; the page asks for a token and sends it to the API.
    case 'ui': return 'open'
    // Who did what, from where: for admins only.
    case 'audit': return 'admin'
    default: break
  }
  return method === 'GET' || method === 'HEAD' ? 'viewer' : 'admin'
}
