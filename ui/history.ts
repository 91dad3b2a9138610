/**
 * A group's page (`#/groups/<name>`): today's records/s over yesterday's same hours, lag, and
 * end-to-end latency p50/p99, drawn with uPlot from GET /v1/groups/{name}/history (twice: the
 * window and the same window a day earlier), with rebalances, workers joining or leaving and the
 * group's errors drawn as vertical marks on every chart's time axis and listed below them. For a
 * group with the continuous audit on, a fourth chart draws what it found per minute of record
 * timestamp: missing records of final minutes, missing records of minutes still in their grace
 * (dashed: copies may yet arrive), duplicates and late records.
 */
import { html } from 'htm/preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import uPlot from 'uplot'
import { ApiError, request } from './api.js'
import { ConsumerOffsetsCard } from './consumer-offsets.js'
// Type-only: the API's response type, declared with the controller's schema.
import type { FerryEventView, GroupView, HistoryView } from '../common/api-schemas.js'

const DAY_MS = 24 * 3600000
const REFRESH_MS = 30000
export const WINDOWS_H = [1, 6, 24] as const

/** Colours the browser test looks for in the canvases: keep them distinct. */
export const COLOURS = {
  today: '#1f6feb',
  yesterday: '#8c8c8c',
  lag: '#0a7b83',
  p50: '#1f6feb',
  p99: '#bc4c00',
  rebalance: '#bf8700',
  worker_joined: '#1a7f37',
  worker_left: '#cf222e',
  group_error: '#8250df',
  other: '#57606a',
  // Not the marks' colours: the browser test counts each series' pixels on a chart that has marks too.
  missing: '#e0115f',
  duplicates: '#6e5494',
  late: '#3b8eea',
} as const

function markColour(type: string): string {
  return (COLOURS as Record<string, string>)[type] ?? COLOURS.other
}

/**
 * A uPlot plugin drawing each event as a vertical line across the plot at its time, with a square
 * of its colour at the top; squares of events close together stack downwards, so a worker joining
 * and the rebalance it causes a moment later both stay visible.
 */
function eventMarks(events: () => FerryEventView[]): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const { ctx, bbox } = u
        const size = Math.round(8 * uPlot.pxRatio)
        const placed: Array<{ x: number; row: number }> = []
        ctx.save()
        ctx.lineWidth = Math.max(1, Math.round(uPlot.pxRatio))
        for (const e of [...events()].sort((a, b) => Date.parse(a.at) - Date.parse(b.at))) {
          const x = Math.round(u.valToPos(Date.parse(e.at) / 1000, 'x', true))
          if (x < bbox.left || x > bbox.left + bbox.width) continue
          const row = placed.filter((p) => Math.abs(p.x - x) < size * 1.5).length
          placed.push({ x, row })
          ctx.strokeStyle = markColour(e.type)
          ctx.fillStyle = markColour(e.type)
          ctx.beginPath()
          ctx.moveTo(x + 0.5, bbox.top)
          ctx.lineTo(x + 0.5, bbox.top + bbox.height)
          ctx.stroke()
          ctx.fillRect(x - size / 2, bbox.top + row * (size + 2), size, size)
        }
        ctx.restore()
      },
    },
  }
}

interface ChartSpec {
  id: string
  title: string
  series: uPlot.Series[]
  data: uPlot.AlignedData
}

/** One uPlot chart in a div; the instance is kept on the element (`uplot`) for tests to read. */
function Chart(props: ChartSpec & { events: FerryEventView[]; width: number }) {
  const el = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const events = useRef(props.events)
  events.current = props.events
  useEffect(() => {
    if (el.current === null) return
    const u = new uPlot(
      {
        width: props.width,
        height: 200,
        series: [{}, ...props.series],
        axes: [{}, { size: 80 }],
        scales: { x: { time: true } },
        legend: { show: true },
        plugins: [eventMarks(() => events.current)],
      },
      props.data,
      el.current,
    )
    plot.current = u
    ;(el.current as HTMLDivElement & { uplot?: uPlot }).uplot = u
    return () => {
      u.destroy()
      plot.current = null
    }
    // Series are fixed per chart; data and events change below without rebuilding it.
  }, [props.width])
  useEffect(() => {
    plot.current?.setData(props.data)
  }, [props.data, props.events])
  return html`<figure class="chart">
    <figcaption>${props.title}</figcaption>
    <div data-testid=${`chart-${props.id}`} ref=${el}></div>
  </figure>`
}

interface Loaded {
  today: HistoryView
  yesterday: HistoryView
  at: number
  /** The group names consumer groups to follow (its page then shows their translations). */
  followsConsumerGroups: boolean
}

/** Today's and yesterday's points on today's time axis (seconds, as uPlot wants). */
export function chartData(loaded: Loaded): { records: uPlot.AlignedData; lag: uPlot.AlignedData; latency: uPlot.AlignedData; audit: uPlot.AlignedData | null } {
  // The axis ends at the window's end, not at the last point's start: events of the current minute are drawn too.
  const x = [...loaded.today.points.map((p) => p.t / 1000), loaded.today.toMs / 1000]
  const yesterdayAt = new Map(loaded.yesterday.points.map((p) => [p.t + DAY_MS, p]))
  const yesterday = loaded.today.points.map((p) => yesterdayAt.get(p.t)?.recordsPerSec ?? null)
  const series = (values: Array<number | null>): Array<number | null> => [...values, null]
  return {
    records: [x, series(loaded.today.points.map((p) => p.recordsPerSec)), series(yesterday)],
    lag: [x, series(loaded.today.points.map((p) => p.lag))],
    latency: [x, series(loaded.today.points.map((p) => p.latencyP99Ms)), series(loaded.today.points.map((p) => p.latencyP50Ms))],
    // Only for groups the continuous audit has audited in the window.
    audit: loaded.today.points.some((p) => p.audit != null)
      ? [
          x,
          series(loaded.today.points.map((p) => (p.audit?.final === true ? p.audit.missing : null))),
          series(loaded.today.points.map((p) => (p.audit?.final === false ? p.audit.missing : null))),
          series(loaded.today.points.map((p) => p.audit?.duplicates ?? null)),
          series(loaded.today.points.map((p) => p.audit?.late ?? null)),
        ]
      : null,
  }
}

async function loadHistory(name: string, hours: number): Promise<Loaded> {
  const to = Date.now()
  const from = to - hours * 3600000
  const path = (f: number, t: number) => `v1/groups/${encodeURIComponent(name)}/history?from=${f}&to=${t}&step=1m`
  const [today, yesterday, group] = await Promise.all([
    request<HistoryView>('GET', path(from, to)),
    request<HistoryView>('GET', path(from - DAY_MS, to - DAY_MS)),
    request<GroupView>('GET', `v1/groups/${encodeURIComponent(name)}`),
  ])
  return { today, yesterday, at: to, followsConsumerGroups: group.spec.consumerGroups !== undefined }
}

export function GroupHistoryPage(props: { name: string; onAuthError: (error: ApiError) => void }) {
  const [hours, setHours] = useState<number>(6)
  const [loaded, setLoaded] = useState<Loaded | null>(null)
  const [error, setError] = useState<string | null>(null)
  const width = Math.max(400, Math.min(1400, (typeof window === 'undefined' ? 1200 : window.innerWidth) - 80))
  useEffect(() => {
    let alive = true
    const load = (): void => {
      loadHistory(props.name, hours)
        .then((next) => {
          if (!alive) return
          setLoaded(next)
          setError(null)
        })
        .catch((e: unknown) => {
          if (!alive) return
          if (e instanceof ApiError && (e.status === 401 || e.status === 403)) props.onAuthError(e)
          setError(e instanceof Error ? e.message : String(e))
        })
    }
    load()
    const timer = window.setInterval(load, REFRESH_MS)
    return () => {
      alive = false
      window.clearInterval(timer)
    }
  }, [props.name, hours])
  const data = loaded ? chartData(loaded) : null
  const events = loaded?.today.events ?? []
  return html`
    <section class="card group-page" data-testid="group-page">
      <p><a href="#/">← all groups</a></p>
      <h2>${props.name} <small class="muted">history, 1-minute points</small></h2>
      <div class="windows">
        ${WINDOWS_H.map((h) => html`<button class=${h === hours ? 'active' : ''} data-testid=${`window-${h}h`} onClick=${() => setHours(h)}>last ${h} h</button>`)}
      </div>
      ${error ? html`<p class="error" data-testid="history-error">${error}</p>` : null}
      ${data === null
        ? html`<p class="loading">Loading history…</p>`
        : html`
            <${Chart}
              id="records"
              title="records/s: today (blue) over yesterday's same hours (grey)"
              width=${width}
              events=${events}
              data=${data.records}
              series=${[
                { label: 'today rec/s', stroke: COLOURS.today, width: 2 },
                { label: 'yesterday rec/s', stroke: COLOURS.yesterday, width: 2 },
              ]}
            />
            <${Chart} id="lag" title="lag (records)" width=${width} events=${events} data=${data.lag} series=${[{ label: 'lag', stroke: COLOURS.lag, width: 2 }]} />
            <${Chart}
              id="latency"
              title="end-to-end latency (ms)"
              width=${width}
              events=${events}
              data=${data.latency}
              series=${[
                // p99 wide and under p50: the two are often in the same latency bucket, and both stay visible.
                { label: 'p99 ms', stroke: COLOURS.p99, width: 5 },
                { label: 'p50 ms', stroke: COLOURS.p50, width: 2 },
              ]}
            />
            ${data.audit === null
              ? null
              : html`<${Chart}
                  id="audit"
                  title="continuous audit (records per minute of record timestamp): missing, duplicates, late"
                  width=${width}
                  events=${events}
                  data=${data.audit}
                  series=${[
                    { label: 'missing (final)', stroke: COLOURS.missing, width: 2, points: { show: true } },
                    { label: 'missing (in grace)', stroke: COLOURS.missing, width: 1, dash: [4, 4] },
                    { label: 'duplicates', stroke: COLOURS.duplicates, width: 2, points: { show: true } },
                    { label: 'late', stroke: COLOURS.late, width: 1 },
                  ]}
                />`}
            <h3>Events on the time axis</h3>
            ${events.length === 0
              ? html`<p class="muted">No rebalances, worker changes or errors in this window.</p>`
              : html`<ul class="events marks" data-testid="history-events">
                  ${events.map(
                    (e) => html`<li>
                      <span class=${`swatch mark-${e.type}`}></span>
                      <time datetime=${e.at}>${new Date(e.at).toLocaleString()}</time> <strong>${e.type.replace(/_/g, ' ')}</strong> ${e.worker ?? ''} ${e.message}
                    </li>`,
                  )}
                </ul>`}
          `}
      ${loaded?.followsConsumerGroups ? html`<${ConsumerOffsetsCard} name=${props.name} onAuthError=${props.onAuthError} />` : null}
    </section>
  `
}
