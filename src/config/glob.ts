// Globs of pluginPolicy: `*` and `?` stay within one path segment, `**` crosses segments.
// Variable names have no `/`, so for them `*` is simply "anything".

const cache = new Map<string, RegExp>()

function toRegExp (glob: string): RegExp {
  let re = cache.get(glob)
  if (re !== undefined) return re
  let src = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]
    if (c === '*' && glob[i + 1] === '*') { src += '.*'; i++ } else if (c === '*') src += '[^/]*'
    else if (c === '?') src += '[^/]'
    else src += c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')
  }
  re = new RegExp(`^${src}$`)
  cache.set(glob, re)
  return re
}

/** Whether `value` matches one of `globs`. */
export function matchesAny (value: string, globs: readonly string[]): boolean {
  return globs.some((g) => toRegExp(g).test(value))
}
