/**
 * Human tables for the CLI: borderless columns under an upper-case header, like kubectl.
 *
 * @example
 *   process.stdout.write(renderTable(['name', 'lag'], [['orders', 0]], { right: [1] }))
 */
import Table from 'cli-table3'

export type Cell = string | number | boolean | null | undefined

export interface TableOptions {
  /** Indexes of the columns aligned right (numbers). */
  right?: readonly number[]
}

const NO_BORDERS = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '',
}

/** The table as text ending in a newline; "(none)" under the header when there are no rows. */
export function renderTable(head: readonly string[], rows: ReadonlyArray<readonly Cell[]>, options: TableOptions = {}): string {
  const table = new Table({
    head: head.map((h) => h.toUpperCase()),
    chars: NO_BORDERS,
    // No colours: output is read by people and by grep alike.
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 3, compact: true },
    colAligns: head.map((_, index) => (options.right?.includes(index) ? 'right' : 'left')),
  })
  for (const row of rows) table.push(row.map((cell) => (cell === null || cell === undefined ? '-' : String(cell))))
  const text = table.toString().split('\n').map((line) => line.trimEnd()).join('\n')
  return `${text}\n${rows.length === 0 ? '(none)\n' : ''}`
}

/** 1234567 → "1,234,567"; null/undefined → "-". */
export function count(value: number | null | undefined): string {
  return value === null || value === undefined ? '-' : Math.round(value).toLocaleString('en')
}

/** Bytes per second in B/s, KiB/s or MiB/s. */
export function rate(bytesPerSec: number | null | undefined): string {
  if (bytesPerSec === null || bytesPerSec === undefined) return '-'
  if (bytesPerSec < 1024) return `${Math.round(bytesPerSec)} B/s`
  if (bytesPerSec < 1024 * 1024) return `${(bytesPerSec / 1024).toFixed(1)} KiB/s`
  return `${(bytesPerSec / 1024 / 1024).toFixed(1)} MiB/s`
}

/** Time since an ISO-8601 instant, e.g. "1.3s", "4m", "2h". */
export function since(iso: string | null | undefined, nowMs: number = Date.now()): string {
  if (!iso) return '-'
  const ms = Math.max(0, nowMs - Date.parse(iso))
  if (!Number.isFinite(ms)) return '-'
  if (ms < 60000) return `${(ms / 1000).toFixed(1)}s`
  if (ms < 3600000) return `${Math.floor(ms / 60000)}m`
  return `${Math.floor(ms / 3600000)}h`
}
