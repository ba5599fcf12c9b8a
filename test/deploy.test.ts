import t from 'tap'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseAllDocuments } from 'yaml'
import { packageRoot } from '../src/paths.js'
import { loadConfig } from '../src/config/load.js'
import { listenRefusal } from '../src/server.js'
import { tempDir } from './helper.js'

const DIR = path.join(packageRoot, 'deploy', 'kubernetes')

function objects (): { file: string, doc: any }[] {
  const out: { file: string, doc: any }[] = []
  for (const file of readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const d of parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`)
      out.push({ file, doc: d.toJS() })
    }
  }
  return out
}

t.test('every file parses and the expected kinds are there', async (t) => {
  const kinds = objects().map((o) => o.doc.kind).sort()
  t.same(kinds, ['ConfigMap', 'Deployment', 'Kustomization', 'PersistentVolumeClaim', 'Service'])
  const kustomization = objects().find((o) => o.doc.kind === 'Kustomization')!.doc
  t.same([...kustomization.resources].sort(), readdirSync(DIR).filter((f) => f !== 'kustomization.yaml').sort(), 'kustomization lists every manifest')
})

t.test('the Deployment probes the health endpoints on 7070 and runs as non-root with the data on the PVC', async (t) => {
  const all = objects().map((o) => o.doc)
  const deployment = all.find((d) => d.kind === 'Deployment')
  const pod = deployment.spec.template
  const [c] = pod.spec.containers
  t.same(c.ports, [{ name: 'http', containerPort: 7070 }])
  t.equal(c.livenessProbe.httpGet.path, '/health/liveness')
  t.equal(c.readinessProbe.httpGet.path, '/health/readiness')
  t.equal(c.livenessProbe.httpGet.port, 'http')
  t.equal(pod.spec.securityContext.runAsNonRoot, true)
  t.not(pod.spec.securityContext.runAsUser, 0)
  t.equal(c.securityContext.allowPrivilegeEscalation, false)
  const env = Object.fromEntries(c.env.filter((e: any) => 'value' in e).map((e: any) => [e.name, e.value]))
  t.equal(env.PLUGVISOR_HOST, '0.0.0.0')
  const pvc = all.find((d) => d.kind === 'PersistentVolumeClaim')
  const dataVolume = pod.spec.volumes.find((v: any) => v.persistentVolumeClaim?.claimName === pvc.metadata.name)
  t.ok(dataVolume, 'a volume uses the claim')
  t.equal(c.volumeMounts.find((m: any) => m.name === dataVolume.name).mountPath, env.PLUGVISOR_DATA_DIR, 'PLUGVISOR_DATA_DIR is on the claim')
  t.same(pod.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '7070', 'prometheus.io/path': '/metrics' }, 'Prometheus scrape annotations')
  t.equal(deployment.spec.strategy.type, 'Recreate', 'never two pods on one SQLite file')

  const service = all.find((d) => d.kind === 'Service')
  t.same(service.spec.selector, pod.metadata.labels, 'the Service selects the pods')
  t.equal(service.spec.ports[0].port, 7070)
})

t.test('the ConfigMap, laid out as the Deployment mounts it, is a valid config whose manifests all load', async (t) => {
  const all = objects().map((o) => o.doc)
  const configMap = all.find((d) => d.kind === 'ConfigMap')
  const pod = all.find((d) => d.kind === 'Deployment').spec.template.spec
  const volume = pod.volumes.find((v: any) => v.configMap?.name === configMap.metadata.name)
  const mount = pod.containers[0].volumeMounts.find((m: any) => m.name === volume.name)
  t.same(volume.configMap.items.map((i: any) => i.key).sort(), Object.keys(configMap.data).sort(), 'every key is mounted')
  const root = tempDir()
  for (const { key, path: rel } of volume.configMap.items) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true })
    writeFileSync(path.join(root, rel), configMap.data[key])
  }
  const args: string[] = pod.containers[0].args
  const configPath = args[args.indexOf('--config') + 1]
  t.ok(configPath.startsWith(`${mount.mountPath}/`), 'the daemon reads the config from the mount')
  const loaded = loadConfig(path.join(root, path.relative(mount.mountPath, configPath)), { env: { PLUGVISOR_HOST: '0.0.0.0', PLUGVISOR_DATA_DIR: '/var/lib/plugvisor' } })
  t.same(loaded.problems, [], 'no manifest problems')
  t.same(loaded.manifests.map((m) => m.name).sort(), ['echo', 'flaky'])
  t.equal(loaded.config.server.host, '0.0.0.0')
  t.equal(loaded.config.server.port, 7070)
  t.equal(listenRefusal(loaded), undefined, 'serve accepts it on 0.0.0.0 (auth.mode none is explicit)')
})

t.test('the container image config listens everywhere and needs an admin token', async (t) => {
  const { resolveTokens } = await import('../src/auth/tokens.js')
  const loaded = loadConfig(path.join(packageRoot, 'config/container.yaml'), { env: {} })
  t.same(loaded.problems, [])
  t.equal(loaded.config.server.host, '0.0.0.0')
  t.equal(listenRefusal(loaded), undefined)
  t.match(resolveTokens(loaded.config.auth, { configFile: loaded.file, env: {} }).problems, [{ path: '/auth/tokens/0/tokenEnv', reason: /PLUGVISOR_ADMIN_TOKEN is not set/ }])
  t.ok(resolveTokens(loaded.config.auth, { configFile: loaded.file, env: { PLUGVISOR_ADMIN_TOKEN: 'x'.repeat(32) } }).auth, 'starts with a token')
})
