// Real headless Chromium for the dashboard tests: Debian's /usr/bin/chromium driven by
// playwright-core (which never downloads a browser), with a fresh profile per launch.
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import { packageRoot } from '../src/paths.js'
import { needs, tempDir, type Tap } from './helper.js'

export const CHROMIUM = '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM)

/** tap options for a browser test. */
export const browserTest = needs(hasChromium, CHROMIUM, 'chromium')

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync']

/** A browser with a fresh profile, closed (and its profile removed) at teardown. */
export async function openBrowser (t: Tap, viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext, page: Page }> {
  const profile = tempDir('plugvisor-chromium-')
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport })
  t.teardown(async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  })
  const page = context.pages()[0] ?? await context.newPage()
  // A script error on the page is a test failure, not a silent blank table.
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  t.teardown(() => { if (errors.length > 0) throw new Error(`errors on the page: ${errors.join('; ')}`) })
  return { context, page }
}

/** Listens on a free loopback port and returns the base URL. */
export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return `http://127.0.0.1:${address.port}`
}

/**
 * Where screenshots go: docs/screenshots/ (the README's) with UPDATE_SCREENSHOTS=1, else a
 * temp folder — a test run does not rewrite committed images.
 */
export function screenshotPath (name: string): string {
  const dir = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(packageRoot, 'docs', 'screenshots') : path.join(tempDir('plugvisor-shots-'))
  mkdirSync(dir, { recursive: true })
  return path.join(dir, name)
}
