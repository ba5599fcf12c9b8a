// Two small SVG charts over the health-history rollups: response time (mean line, min–max band)
// and failed/warned probes per bucket. Plain SVG: a few hundred points need no library, and
// each point stays an element a test (or a hover) can find.
import { h, s } from './dom.js'
import { ms } from './format.js'

export const RANGES = {
  '1h': { span: 3_600_000, resolution: 'minute', bucket: 60_000, tick: 10 * 60_000 },
  '24h': { span: 86_400_000, resolution: 'minute', bucket: 60_000, tick: 3 * 3_600_000 },
  '7d': { span: 7 * 86_400_000, resolution: 'hour', bucket: 3_600_000, tick: 86_400_000 }
}

const PAD = { left: 52, right: 12, top: 10, bottom: 24 }
const HEIGHT = 170
// Above this many buckets the points are drawn as the line only.
const MAX_DOTS = 400
let clips = 0

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceCeil (v) {
  if (!(v > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

const tickFormat = (range) => new Intl.DateTimeFormat(undefined, range === '7d' ? { month: 'short', day: 'numeric' } : { hour: '2-digit', minute: '2-digit', hour12: false })
const pointFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false })

function frame (width, until, span, yMax, yLabel, range) {
  const x0 = PAD.left
  const x1 = width - PAD.right
  const y0 = HEIGHT - PAD.bottom
  const y1 = PAD.top
  const since = until - span
  const x = (t) => x0 + (t - since) / span * (x1 - x0)
  const y = (v) => y0 - v / yMax * (y0 - y1)
  const svg = s('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, class: 'chart', role: 'img' })
  const grid = s('g', { class: 'grid' })
  // yMax is 1, 2 or 5 times a power of ten: 5, 4 or 5 steps give round labels.
  const steps = String(yMax)[0] === '2' ? 4 : 5
  for (let i = 0; i <= steps; i++) {
    const v = yMax * i / steps
    grid.append(s('line', { x1: x0, x2: x1, y1: y(v), y2: y(v) }),
      s('text', { x: x0 - 6, y: y(v) + 4, 'text-anchor': 'end' }, yLabel(v)))
  }
  const { tick } = RANGES[range]
  const fmt = tickFormat(range)
  // Ticks on local round times (midnight for days).
  const offset = new Date(since).getTimezoneOffset() * 60_000
  for (let t = Math.ceil((since - offset) / tick) * tick + offset; t <= until; t += tick) {
    grid.append(s('line', { x1: x(t), x2: x(t), y1: y0, y2: y0 + 4 }),
      s('text', { x: x(t), y: HEIGHT - 6, 'text-anchor': 'middle' }, fmt.format(new Date(t))))
  }
  grid.append(s('line', { class: 'axis', x1: x0, x2: x1, y1: y0, y2: y0 }))
  svg.append(grid)
  return { svg, x, y, y0 }
}

/** Splits buckets (oldest first) where a bucket is missing, so the line does not bridge gaps. */
function runs (buckets, size) {
  const out = []
  let run = []
  for (const b of buckets) {
    if (run.length > 0 && b.t - run[run.length - 1].t > size * 1.5) { out.push(run); run = [] }
    run.push(b)
  }
  if (run.length > 0) out.push(run)
  return out
}

/**
 * Renders both charts into `container` from rollups (newest first, as the API answers).
 * Returns how many buckets were drawn.
 */
export function renderCharts (container, { buckets, range, until }) {
  const { span, bucket } = RANGES[range]
  // The figures go in first, so each chart is drawn at its column's real width (1 SVG unit = 1 px).
  const rtFigure = chartBlock('Response time (ms)')
  const fcFigure = chartBlock('Failed probes')
  container.replaceChildren(rtFigure.figure, fcFigure.figure)
  const width = Math.max(320, rtFigure.figure.clientWidth || 560)
  const data = buckets.map((b) => ({ ...b, t: Date.parse(b.at) })).filter((b) => b.t >= until - span - bucket).reverse()
  const timed = data.filter((b) => b.avgMs !== null)

  // Response time.
  // Scaled to the means: one slow first probe after a start would flatten everything else.
  // The min–max band is clipped at the top instead.
  const peakAvg = Math.max(0, ...timed.map((b) => b.avgMs))
  const yMaxMs = niceCeil(Math.max(1, Math.min(Math.max(0, ...timed.map((b) => b.maxMs)), peakAvg * 3)))
  const rt = frame(width, until, span, yMaxMs, (v) => String(Number(v.toPrecision(3))), range)
  rt.svg.setAttribute('aria-label', `Probe response time, ${range}`)
  rt.svg.dataset.points = String(timed.length)
  const cx = (b) => rt.x(b.t + bucket / 2)
  const clipId = `clip-${++clips}`
  rt.svg.append(s('clipPath', { id: clipId }, s('rect', { x: PAD.left, y: PAD.top, width: width - PAD.left - PAD.right, height: HEIGHT - PAD.top - PAD.bottom })))
  const plot = s('g', { 'clip-path': `url(#${clipId})` })
  rt.svg.append(plot)
  for (const r of runs(timed, bucket)) {
    const top = r.map((b) => `${cx(b).toFixed(1)},${rt.y(b.maxMs).toFixed(1)}`)
    const bottom = r.map((b) => `${cx(b).toFixed(1)},${rt.y(b.minMs).toFixed(1)}`).reverse()
    plot.append(s('polygon', { class: 'band', points: [...top, ...bottom].join(' ') }))
    plot.append(s('polyline', { class: 'line', points: r.map((b) => `${cx(b).toFixed(1)},${rt.y(b.avgMs).toFixed(1)}`).join(' ') }))
  }
  if (timed.length <= MAX_DOTS) {
    const dots = s('g', { class: 'dots' })
    for (const b of timed) {
      dots.append(s('circle', { cx: cx(b).toFixed(1), cy: rt.y(b.avgMs).toFixed(1), r: 2.5 },
        s('title', {}, `${pointFormat.format(new Date(b.t))}: mean ${ms(b.avgMs)} (min ${ms(b.minMs)}, max ${ms(b.maxMs)}), ${b.count} checks`)))
    }
    rt.svg.append(dots)
  }

  // Failures and warnings per bucket.
  const yMaxF = niceCeil(Math.max(1, ...data.map((b) => b.failures + b.warnings)))
  const fc = frame(width, until, span, yMaxF, (v) => Number.isInteger(v) ? String(v) : '', range)
  fc.svg.setAttribute('aria-label', `Failed probes, ${range}`)
  fc.svg.dataset.points = String(data.length)
  const barWidth = Math.max(1, rt.x(bucket) - rt.x(0) - 1)
  const bars = s('g', { class: 'bars' })
  for (const b of data) {
    const title = s('title', {}, `${pointFormat.format(new Date(b.t))}: ${b.failures} failed, ${b.warnings} warned of ${b.count}`)
    const x = fc.x(b.t)
    if (b.failures > 0) bars.append(s('rect', { class: 'fail', x: x.toFixed(1), width: barWidth.toFixed(1), y: fc.y(b.failures).toFixed(1), height: (fc.y0 - fc.y(b.failures)).toFixed(1) }, title))
    if (b.warnings > 0) bars.append(s('rect', { class: 'warn', x: x.toFixed(1), width: barWidth.toFixed(1), y: fc.y(b.failures + b.warnings).toFixed(1), height: (fc.y(b.failures) - fc.y(b.failures + b.warnings)).toFixed(1) }, title.cloneNode(true)))
    // A passing bucket gets a thin mark on the axis, so "checked, all fine" differs from "no data".
    if (b.failures === 0 && b.warnings === 0) bars.append(s('rect', { class: 'ok', x: x.toFixed(1), width: barWidth.toFixed(1), y: fc.y0 - 2, height: 2 }, title))
  }
  fc.svg.append(bars)

  const totals = data.reduce((a, b) => ({ count: a.count + b.count, failures: a.failures + b.failures }), { count: 0, failures: 0 })
  rtFigure.note.textContent = data.length === 0 ? 'no probe results in this range' : `${totals.count} checks`
  fcFigure.note.textContent = data.length === 0 ? '' : `${totals.failures} failed`
  rtFigure.figure.append(rt.svg)
  fcFigure.figure.append(fc.svg)
  return data.length
}

function chartBlock (title) {
  const note = h('span', { class: 'muted' })
  return { figure: h('figure', { class: 'chart-block' }, h('figcaption', {}, title, ' ', note)), note }
}
