// The operations files shipped beside the Kubernetes manifests: Prometheus alert rules (promtool
// check rules, and promtool test rules on plugvisor-shaped series), the Grafana dashboard, the
// systemd unit and the Compose example. Every metric they name must be one a real daemon exports.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parse } from 'yaml'
import { packageRoot } from '../src/paths.js'
import { build, fixturePlugin, needs, tempDir, writeConfig } from './helper.js'

const DEPLOY = path.join(packageRoot, 'deploy')
const RULES = path.join(DEPLOY, 'prometheus', 'plugvisor-alerts.yaml')
const DASHBOARD = path.join(DEPLOY, 'grafana', 'plugvisor-dashboard.json')
const UNIT = path.join(DEPLOY, 'systemd', 'plugvisor.service')
const COMPOSE_DIR = path.join(DEPLOY, 'docker-compose')

// promtool comes from Debian's prometheus package (.ci/run installs it): missing in CI is a failure.
const hasPromtool = spawnSync('promtool', ['--version']).status === 0
const promtoolTest = needs(hasPromtool, 'promtool', 'prometheus')

/** Runs promtool; its exit status and everything it printed. */
function promtool (args: string[]): { status: number | null, out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}
// Grafana's reference to the dashboard's data source variable.
const DATASOURCE_VAR = '$' + '{datasource}'

t.test('promtool check rules passes on the alert rules', promtoolTest, async (t) => {
  const { status, out } = promtool(['check', 'rules', RULES])
  t.equal(status, 0, out)
  t.match(out, /SUCCESS: 7 rules found/)
  const names = (parse(readFileSync(RULES, 'utf8')).groups[0].rules as { alert: string }[]).map((r) => r.alert)
  for (const a of ['PlugvisorPluginFailed', 'PlugvisorPluginRestartStorm', 'PlugvisorProbeFailures', 'PlugvisorSlowProbes', 'PlugvisorCircuitOpen']) {
    t.ok(names.includes(a), `${a} is there`)
  }
})

/** A promtool alert_rule_test case: the alert fires at evalTime with these labels and annotations. */
const fires = (evalTime: string, alertname: string, labels: Record<string, string>, summary: string, description: string): unknown =>
  ({ eval_time: evalTime, alertname, exp_alerts: [{ exp_labels: labels, exp_annotations: { summary, description } }] })
/** A promtool alert_rule_test case: the alert is not firing (yet) at evalTime. */
const quiet = (evalTime: string, alertname: string): unknown => ({ eval_time: evalTime, alertname, exp_alerts: [] })

t.test('promtool test rules: the alerts fire on the series plugvisor exports, and not before their `for`', promtoolTest, async (t) => {
  const dir = tempDir()
  const labels = 'instance="host:7070", job="plugvisor"'
  const test = {
    rule_files: [RULES],
    evaluation_interval: '1m',
    tests: [{
      interval: '1m',
      input_series: [
        { series: `plugvisor_plugin_state{${labels}, plugin="importer", state="failed"}`, values: '0 1x10' },
        { series: `plugvisor_circuit_state{${labels}, plugin="search", state="open"}`, values: '1x10' },
        // Held open by an operator on purpose: no alert.
        { series: `plugvisor_circuit_state{${labels}, plugin="cache", state="isolated"}`, values: '1x10' },
        { series: `plugvisor_plugin_health_checks_total{${labels}, plugin="api", probe="http", result="failure"}`, values: '0+30x30' },
        { series: `plugvisor_plugin_health_checks_total{${labels}, plugin="api", probe="http", result="success"}`, values: '0+30x30' }
      ],
      alert_rule_test: [
        quiet('1m', 'PlugvisorPluginFailed'),
        fires('3m', 'PlugvisorPluginFailed', { severity: 'critical', instance: 'host:7070', job: 'plugvisor', plugin: 'importer', state: 'failed' },
          'plugin importer is failed on host:7070',
          'It used up its restart budget and is no longer restarted. Read GET /plugins/importer/events and /logs (or the dashboard at /ui), fix the cause, then POST /plugins/importer/start.'),
        quiet('4m', 'PlugvisorCircuitOpen'),
        fires('6m', 'PlugvisorCircuitOpen', { severity: 'warning', instance: 'host:7070', job: 'plugvisor', plugin: 'search', state: 'open' },
          'the circuit of calls into search has been open for 5 minutes on host:7070',
          'Calls through /plugins/search/invoke/* answer 503 PLUGVISOR_CIRCUIT_OPEN (or the fallback). GET /plugins/search/circuit shows the last failure.'),
        quiet('10m', 'PlugvisorProbeFailures'),
        fires('20m', 'PlugvisorProbeFailures', { severity: 'warning', instance: 'host:7070', plugin: 'api' },
          '50% of the probes of api fail on host:7070',
          "See GET /plugins/api/health/history?resolution=minute or the plugin's page at /ui.")
      ]
    }]
  }
  const file = path.join(dir, 'alerts.test.yaml')
  writeFileSync(file, JSON.stringify(test))
  const { status, out } = promtool(['test', 'rules', file])
  t.equal(status, 0, out)
  t.match(out, /SUCCESS/)
})

/** Family names of a real daemon's /metrics (with a probed plugin and a call through the proxy). */
async function exportedFamilies (t: Parameters<typeof build>[0]): Promise<Set<string>> {
  const app = await build(t, writeConfig([fixturePlugin('one', 'serve', { port: 'auto', healthCheck: { http: {}, intervalMs: 600000 } })]), { boot: false })
  await app.daemon.boot()
  app.daemon.resources.sample()
  await app.inject({ method: 'GET', url: '/plugins/one/invoke/x' })
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body
  const families = new Set<string>()
  for (const m of body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    families.add(m[1])
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) families.add(m[1] + s)
  }
  return families
}

const metricNames = (text: string): string[] => [...new Set([...text.matchAll(/\b((?:plugvisor|process|nodejs)_[a-z_]+)\b/g)].map((m) => m[1]))]

t.test('every metric the rules and the dashboard use is one the daemon exports', async (t) => {
  const families = await exportedFamilies(t)
  const rules = (parse(readFileSync(RULES, 'utf8')).groups[0].rules as { expr: string }[]).map((r) => r.expr).join('\n')
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'))
  const exprs = JSON.stringify(dashboard).match(/"(?:expr|definition)":"(?:[^"\\]|\\.)*"/g)!.join('\n')
  const used = metricNames(`${rules}\n${exprs}`)
  t.ok(used.length >= 12, `the files use ${used.length} metrics`)
  t.same(used.filter((n) => !families.has(n)), [], 'none is unknown')
})

t.test('the Grafana dashboard is importable: unique panel ids, a data source variable, panels on the 24-column grid', async (t) => {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8'))
  t.equal(d.uid, 'plugvisor')
  const vars = d.templating.list as { name: string, type: string }[]
  t.same(vars.map((v) => v.name), ['datasource', 'instance', 'plugin'])
  t.equal(vars[0].type, 'datasource')
  const panels = d.panels as { id: number, type: string, gridPos: { x: number, w: number }, datasource?: { uid: string }, targets?: { expr: string, datasource: { uid: string } }[] }[]
  t.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique')
  for (const p of panels) {
    t.ok(p.gridPos.x + p.gridPos.w <= 24, `panel ${p.id} fits the grid`)
    if (p.type === 'row') continue
    t.equal(p.datasource?.uid, DATASOURCE_VAR, `panel ${p.id} uses the data source variable`)
    for (const target of p.targets ?? []) {
      t.equal(target.datasource.uid, DATASOURCE_VAR)
      if (target.expr.includes('plugvisor_plugin_') || target.expr.includes('plugvisor_invocation') || target.expr.includes('plugvisor_circuit')) {
        t.match(target.expr, /plugin=~"\$plugin"/, `panel ${p.id} follows the plugin variable`)
      }
    }
  }
})

t.test('the systemd unit: SIGTERM to the daemon alone, reload by SIGHUP, state directory; systemd-analyze verify has nothing to say', async (t) => {
  const text = readFileSync(UNIT, 'utf8')
  const keys = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (m) keys.set(m[1], [...(keys.get(m[1]) ?? []), m[2]])
  }
  t.match(keys.get('ExecStart')![0], /\/plugvisor serve --config \/etc\/plugvisor\/plugvisor\.yaml$/)
  t.same(keys.get('ExecReload'), ['/bin/kill -HUP $MAINPID'])
  t.same(keys.get('KillMode'), ['mixed'], 'plugins are stopped by the daemon, in dependency order, not all at once by systemd')
  t.same(keys.get('StateDirectory'), ['plugvisor'])
  t.ok(keys.get('Environment')!.includes('PLUGVISOR_DATA_DIR=/var/lib/plugvisor'), 'the database in the state directory')
  t.same(keys.get('User'), ['plugvisor'], 'not root')
  const analyze = spawnSync('systemd-analyze', ['--version'])
  if (analyze.status !== 0) {
    t.comment('systemd-analyze is not installed: verify skipped')
    return
  }
  // The unit as installed, with ExecStart pointing at a program that exists here.
  const dir = tempDir()
  const copy = path.join(dir, 'plugvisor.service')
  writeFileSync(copy, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`))
  const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' })
  t.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no findings')
  t.equal(r.status, 0)
})

t.test('the Compose example: readiness health check, data volume, files it mounts exist; its prometheus.yml loads the rules', async (t) => {
  const compose = parse(readFileSync(path.join(COMPOSE_DIR, 'compose.yaml'), 'utf8'))
  const pv = compose.services.plugvisor
  t.ok(existsSync(path.join(COMPOSE_DIR, pv.build, 'Dockerfile')), 'builds this repository\'s Dockerfile')
  t.match(pv.healthcheck.test.join(' '), /http:\/\/127\.0\.0\.1:7070\/health\/readiness/)
  t.ok(pv.volumes.includes('plugvisor-data:/var/lib/plugvisor'), 'the database on a volume')
  t.match(pv.environment.PLUGVISOR_ADMIN_TOKEN, /^\$\{PLUGVISOR_ADMIN_TOKEN:\?/, 'refuses to start without a token')
  t.ok(pv.ports.every((p: string) => p.startsWith('127.0.0.1:')), 'published on loopback only')
  for (const [name, service] of Object.entries(compose.services as Record<string, { volumes?: string[] }>)) {
    for (const v of service.volumes ?? []) {
      const source = v.split(':')[0]
      if (source.startsWith('.')) t.ok(existsSync(path.join(COMPOSE_DIR, source)), `${name}: ${source} exists`)
    }
  }
  if (!hasPromtool) {
    t.comment('promtool is not installed: prometheus.yml check skipped')
    return
  }
  // Laid out as the container sees it: /etc/prometheus/{prometheus.yml, plugvisor-alerts.yaml}.
  const dir = tempDir()
  copyFileSync(path.join(COMPOSE_DIR, 'prometheus.yml'), path.join(dir, 'prometheus.yml'))
  copyFileSync(RULES, path.join(dir, 'plugvisor-alerts.yaml'))
  const { status, out } = promtool(['check', 'config', path.join(dir, 'prometheus.yml')])
  t.equal(status, 0, out)
  t.match(out, /SUCCESS: 7 rules found/)
})
