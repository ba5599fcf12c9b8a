// Builds plugvisor-spawner (spawner.c) into dist/native/ with the system's C compiler. Without
// one the build goes on: the daemon then spawns plugins itself, and says so when it starts.
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const out = path.join(root, 'dist', 'native', 'plugvisor-spawner')
const cc = process.env.CC ?? 'cc'
mkdirSync(path.dirname(out), { recursive: true })
try {
  execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, path.join(root, 'native', 'spawner.c')], { stdio: 'inherit' })
} catch (err) {
  console.warn(`plugvisor: could not build ${out} with ${cc} (${err.message}); plugins will be spawned by the daemon itself`)
}
