/**
 * The consumer groups a topic group follows to the target (GET /v1/groups/{name}/consumer-offsets),
 * on the group's page: per partition the group's committed offset on the source, where that is on
 * the target, the target's committed offset, whether the translation is exact and why, and the
 * continuous sync's last result per consumer group (docs/disaster-recovery.md).
 */
import { html } from 'htm/preact'
import { useEffect, useState } from 'preact/hooks'
import { ApiError, request } from './api.js'
// Type-only: the API's response type, declared with the controller's schema.
import type { ConsumerOffsetsView } from '../common/api-schemas.js'

const REFRESH_MS = 15000

export function ConsumerOffsetsCard(props: { name: string; onAuthError: (error: ApiError) => void }) {
  const [view, setView] = useState<ConsumerOffsetsView | null>(null)
  const [problem, setProblem] = useState<string | null>(null)
  useEffect(() => {
    let alive = true
    const load = (): void => {
      request<ConsumerOffsetsView>('GET', `v1/groups/${encodeURIComponent(props.name)}/consumer-offsets`)
        .then((next) => {
          if (!alive) return
          setView(next)
          setProblem(null)
        })
        .catch((e: unknown) => {
          if (!alive) return
          if (e instanceof ApiError && (e.status === 401 || e.status === 403)) props.onAuthError(e)
          setProblem(e instanceof Error ? e.message : String(e))
        })
    }
    load()
    const timer = window.setInterval(load, REFRESH_MS)
    return () => {
      alive = false
      window.clearInterval(timer)
    }
  }, [props.name])
  return html`
    <section data-testid="consumer-offsets">
      <h3>Consumer groups on the target</h3>
      ${problem !== null
        ? html`<p class="muted">${problem}</p>`
        : view === null
          ? html`<p class="loading">Loading translations…</p>`
          : view.partitions.length === 0
            ? html`<p class="muted">No committed offsets of ${view.consumerGroups.length === 0 ? 'any followed consumer group' : view.consumerGroups.join(', ')} on the source yet.</p>`
            : html`<table>
                <thead>
                  <tr><th>consumer group</th><th>topic</th><th>partition</th><th>source committed</th><th>target offset</th><th>target committed</th><th>exact</th><th>skipped</th><th>why</th></tr>
                </thead>
                <tbody>
                  ${view.partitions.map(
                    (r) => html`<tr data-testid="translation-row">
                      <td>${r.consumerGroup}</td><td>${r.targetTopic === r.topic ? r.topic : `${r.topic} → ${r.targetTopic}`}</td><td class="num">${r.partition}</td>
                      <td class="num">${r.sourceOffset}</td><td class="num">${r.targetOffset}</td><td class="num">${r.targetCommitted ?? '–'}</td>
                      <td>${r.exact ? 'yes' : 'no: re-reads more'}</td><td class="num">${r.skipped}</td><td>${r.reason}</td>
                    </tr>`,
                  )}
                </tbody>
              </table>`}
      ${view?.sync.map((s) => html`<p class=${s.state === 'synced' ? 'muted' : 'error'} data-testid="consumer-sync">${s.consumerGroup}: ${s.state} (${new Date(s.at).toLocaleTimeString()}): ${s.message}</p>`)}
    </section>
  `
}
