/**
 * java.util.Properties text: escaping and a deterministic writer.
 *
 * The escaping follows `Properties.store()` where it matters for `Properties.load()` to read
 * back exactly what we meant, and stays readable where Java's own output is noisy: `=`, `:`,
 * `#` and `!` are escaped in keys only (in a value they are literal once the separator has
 * been read, and `${dir:/path:key}` references stay legible).
 */

/** Where a string goes in a `key=value` line: keys escape every space and separator. */
export type PropertyPart = 'key' | 'value'

const NAMED_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\f': '\\f',
}

/**
 * Escape `text` so that `java.util.Properties.load()` reads it back unchanged.
 *
 * - backslash, tab, newline, carriage return and form feed become `\\`, `\t`, `\n`, `\r`, `\f`;
 * - in a key, every space and each of `=`, `:`, `#`, `!` get a backslash (they would end the
 *   key or start a comment);
 * - in a value, a leading space gets a backslash (`load()` strips leading whitespace);
 * - every other character outside printable ASCII (0x20-0x7e) becomes `\uXXXX`, per UTF-16
 *   code unit, upper-case hex, as `store()` writes it (the file is then pure ASCII, which
 *   reads the same as ISO-8859-1 and as UTF-8).
 */
export function escapeProperty(text: string, part: PropertyPart = 'value'): string {
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const ch = text.charAt(i)
    const code = text.charCodeAt(i)
    const named = NAMED_ESCAPES[ch]
    if (named !== undefined) {
      out += named
    } else if (ch === ' ') {
      out += part === 'key' || i === 0 ? '\\ ' : ' '
    } else if (part === 'key' && (ch === '=' || ch === ':' || ch === '#' || ch === '!')) {
      out += `\\${ch}`
    } else if (code < 0x20 || code > 0x7e) {
      out += `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`
    } else {
      out += ch
    }
  }
  return out
}

/**
 * A properties file: `comments` as `# ` lines, then one `key=value` line per entry, keys in
 * code-unit order so the same input always gives the same bytes.
 */
export function formatProperties(entries: Readonly<Record<string, string>>, comments: readonly string[] = []): string {
  const lines = comments.map((comment) => (comment === '' ? '#' : `# ${escapeComment(comment)}`))
  if (lines.length > 0) lines.push('')
  for (const key of Object.keys(entries).sort(compareCodeUnits)) {
    lines.push(`${escapeProperty(key, 'key')}=${escapeProperty(entries[key] ?? '', 'value')}`)
  }
  return `${lines.join('\n')}\n`
}

/**
 * A comment only has to stay on its line (a line break would start a live `key=value` line)
 * and ASCII like the rest of the file; spaces and separators are fine as they are.
 */
function escapeComment(text: string): string {
  let out = ''
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    out += code === 0x09 || (code >= 0x20 && code <= 0x7e) ? text.charAt(i) : `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`
  }
  return out
}

/** Plain code-unit order, independent of the locale (`localeCompare` is not). */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
