/**
 * Topic patterns, matched by RE2 (re2js, pure JavaScript): linear time in the topic name's
 * length whatever the pattern, so no pattern a caller sends can block a controller's event
 * loop the way `(a+)+$` or `(.*a){25}` block JavaScript's backtracking RegExp. What RE2 cannot
 * run in linear time (backreferences, lookahead and lookbehind) does not compile, and is
 * refused at create time with a message naming `topicPattern`.
 *
 * @example
 *   const problem = topicPatternProblem('(a)\\1')   // 'uses syntax RE2 does not support ...'
 *   topicPatternMatches('orders\\..*', 'orders.eu') // true (whole-name match)
 */
import { RE2JS } from 're2js'

/** Longest topic pattern accepted (characters). */
export const MAX_TOPIC_PATTERN_LENGTH = 1000
/** Compiled patterns kept (most recently used). */
const MAX_CACHED_PATTERNS = 256
/** Remembered match results per pattern: a topic list is matched again at every reconcile pass. */
const MAX_CACHED_RESULTS = 20000

interface Compiled {
  re: RE2JS
  results: Map<string, boolean>
}

const cache = new Map<string, Compiled | Error>()

function compileUncached(pattern: string): Compiled | Error {
  if (pattern.length > MAX_TOPIC_PATTERN_LENGTH) return new Error(`is ${pattern.length} characters long; at most ${MAX_TOPIC_PATTERN_LENGTH} are allowed`)
  try {
    // Whole-name match, as before: matches() anchors at both ends.
    return { re: RE2JS.compile(pattern), results: new Map() }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    return new Error(
      `is not a pattern Ferry can match in linear time (RE2 syntax; no backreferences, lookahead or lookbehind, repeat counts at most 1000): ${reason}`,
    )
  }
}

function compiled(pattern: string): Compiled | Error {
  const hit = cache.get(pattern)
  if (hit !== undefined) {
    // Map keeps insertion order: re-inserting makes it the most recently used.
    cache.delete(pattern)
    cache.set(pattern, hit)
    return hit
  }
  const made = compileUncached(pattern)
  cache.set(pattern, made)
  if (cache.size > MAX_CACHED_PATTERNS) cache.delete(cache.keys().next().value as string)
  return made
}

/** Why `pattern` cannot be used as a topic pattern, or undefined when it can. */
export function topicPatternProblem(pattern: string): string | undefined {
  const made = compiled(pattern)
  return made instanceof Error ? made.message : undefined
}

/** Whether `topic` as a whole matches `pattern`. Throws when the pattern cannot be compiled. */
export function topicPatternMatches(pattern: string, topic: string): boolean {
  const made = compiled(pattern)
  if (made instanceof Error) throw made
  const known = made.results.get(topic)
  if (known !== undefined) return known
  const result = made.re.matches(topic)
  if (made.results.size >= MAX_CACHED_RESULTS) made.results.clear()
  made.results.set(topic, result)
  return result
}
