// Reads the Prometheus text format back into series, for assertions in tests.
export interface Series { name: string, labels: Record<string, string>, value: number }

export function parseMetrics (text: string): { series: Series[], types: Map<string, string> } {
  const series: Series[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) { types.set(type[1], type[2]); continue }
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2]
    series.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return { series, types }
}

/** The value of the one series of `name` whose labels include `labels`; undefined when none. */
export function valueOf (series: Series[], name: string, labels: Record<string, string>): number | undefined {
  const found = series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  if (found.length > 1) throw new Error(`${found.length} series of ${name} match ${JSON.stringify(labels)}`)
  return found[0]?.value
}
