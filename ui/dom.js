// A tiny element builder. Text always goes in as text nodes (never HTML), so plugin names,
// log lines and error messages cannot inject markup.

export function h (tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') el.className = v
    else if (k === 'dataset') Object.assign(el.dataset, v)
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, v === true ? '' : v)
  }
  append(el, children)
  return el
}

function append (el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue
    if (Array.isArray(c)) append(el, c)
    else el.append(c instanceof Node ? c : String(c))
  }
}

const SVG = 'http://www.w3.org/2000/svg'
export function s (tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v))
  append(el, children)
  return el
}

/** Sets a text only when it changed: in-place updates of 500 rows touch only what moved. */
export function setText (el, text) {
  if (el.textContent !== text) el.textContent = text
}

export function toast (message, kind = 'info') {
  const box = document.getElementById('toasts')
  const el = h('div', { class: `toast ${kind}` }, message)
  box.append(el)
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000)
}
