// The package root, found by walking up from this module: the same code runs from src/ (tests)
// and from dist/src/ (built), which sit at different depths.
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

function findRoot (): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'migrations'))) return dir
    const up = path.dirname(dir)
    if (up === dir) throw new Error('plugvisor: cannot find the package root (package.json + migrations/)')
    dir = up
  }
}

export const packageRoot = findRoot()
export const migrationsDir = path.join(packageRoot, 'migrations')
/** plugvisor-spawner, built from native/spawner.c by `npm run build` when a C compiler is there. */
export const spawnerBinary = path.join(packageRoot, 'dist', 'native', 'plugvisor-spawner')
