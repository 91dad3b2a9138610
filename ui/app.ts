/**
 * The Ferry dashboard: one page, polling the controller's REST API every 2 s. Groups with their
 * state, per-partition position, lag and throughput; workers with zone, load, heartbeat age and
 * assigned partitions; the controller leader; recent events; and a form that creates a group
 * and shows the API's validation errors by field. Built by esbuild into dist/ui (no CDN).
 */
import { html, render } from 'htm/preact'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { ApiError, getToken, request, setToken, type FieldProblem } from './api.js'
import { GroupHistoryPage } from './history.js'
// The API's response types, declared once with the controller's schemas (type-only: nothing of it is bundled).
import type { AssignmentsView, ClustersView, ClusterView, EventsView, FerryEventView, GroupsView, GroupView, InstanceView, NodesView, Readiness, WorkerPartitionReport, WorkersView } from '../common/api-schemas.js'

const POLL_INTERVAL_MS = 2000

interface Snapshot {
  ready: Readiness | null
  groups: GroupView[]
  workers: WorkersView
  assignments: AssignmentsView['assignments']
  events: FerryEventView[]
  clusters: ClusterView[]
  /** Node checks (the leader's last round), null when they could not be read. */
  nodes: NodesView | null
  /** Errors of parts that could not be loaded this round, by part. */
  errors: Record<string, string>
  at: number
}

type AuthState = 'open' | 'needs-token' | 'read-only'

const number = new Intl.NumberFormat('en')
const fmt = (value: number | null | undefined): string => (value === null || value === undefined ? '–' : number.format(Math.round(value)))

function bytes(perSec: number): string {
  if (perSec < 1024) return `${fmt(perSec)} B/s`
  if (perSec < 1024 * 1024) return `${(perSec / 1024).toFixed(1)} KiB/s`
  return `${(perSec / 1024 / 1024).toFixed(1)} MiB/s`
}

function age(iso: string, now: number): string {
  const ms = Math.max(0, now - Date.parse(iso))
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 3600000) return `${Math.floor(ms / 60000)} min`
  return `${Math.floor(ms / 3600000)} h`
}

const key = (p: { group: string; topic: string; partition: number }): string => `${p.group}/${p.topic}/${p.partition}`

/** Worker reports (throughput, mirrored counts) by group/topic/partition, from the reporting owner. */
function reportsByPartition(workers: InstanceView[]): Map<string, WorkerPartitionReport & { worker: string }> {
  const reports = new Map<string, WorkerPartitionReport & { worker: string }>()
  for (const worker of workers) {
    // metrics is whatever the worker last reported (the API declares it unknown); its partitions are WorkerPartitionReports.
    const partitions = (worker.metrics as { partitions?: WorkerPartitionReport[] } | null | undefined)?.partitions ?? []
    for (const p of partitions) reports.set(key(p), { ...p, worker: worker.id })
  }
  return reports
}

async function loadSnapshot(): Promise<Snapshot> {
  const errors = Object.create(null) as Record<string, string>
  const part = async <T>(name: string, load: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await load()
    } catch (error) {
      // Authorisation problems concern the whole page: let them through.
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) throw error
      errors[name] = error instanceof Error ? error.message : String(error)
      return fallback
    }
  }
  const [ready, list, workers, assignments, events, clusters, nodes] = await Promise.all([
    part('leader', () => request<Readiness>('GET', 'readyz'), null),
    part('groups', async () => (await request<GroupsView>('GET', 'v1/groups')).groups, []),
    part('workers', () => request<WorkersView>('GET', 'v1/workers'), { workers: [], controllers: [] }),
    part('assignments', async () => (await request<AssignmentsView>('GET', 'v1/assignments')).assignments, {}),
    part('events', async () => (await request<EventsView>('GET', 'v1/events?limit=50')).events, []),
    part('clusters', async () => (await request<ClustersView>('GET', 'v1/clusters')).clusters, []),
    part('nodes', () => request<NodesView>('GET', 'v1/nodes'), null),
  ])
  const groups = await Promise.all(
    list.map((g) =>
      part(`group ${g.name}`, () => request<GroupView>('GET', `v1/groups/${encodeURIComponent(g.name)}`), {
        ...g,
        createdAt: '',
        updatedAt: '',
        status: { healthy: false, observedAt: null, topics: {}, assignedPartitions: 0, recordsMirrored: 0, lag: null, drift: { not_reported: 0, reported_by_other: 0, no_progress: 0 }, unservedPastGrace: 0 },
        partitions: [],
      }),
    ),
  )
  groups.sort((a, b) => a.name.localeCompare(b.name))
  return { ready, groups, workers, assignments, events, clusters, nodes, errors, at: Date.now() }
}

function Header(props: { snap: Snapshot | null; auth: AuthState; onSignOut: () => void; failing: string | null }) {
  const { snap, auth } = props
  const ready = snap?.ready
  const frozen = ready?.checks.rebalancing
  return html`
    <header>
      <h1>Ferry</h1>
      <div class="leader" data-testid="leader">
        controller leader: <strong>${ready?.leader ?? 'none'}</strong>
        ${ready ? html`<span class=${`badge ${ready.ready ? 'ok' : 'bad'}`}>${ready.ready ? 'ready' : 'not ready'}</span>` : null}
        ${frozen ? html`<span class="badge bad" title=${frozen}>rebalancing frozen</span>` : null}
      </div>
      <div class="updated">
        ${props.failing
          ? html`<span class="badge bad" data-testid="connection-error">${props.failing}</span>`
          : snap
            ? html`live · updated ${new Date(snap.at).toLocaleTimeString()}`
            : 'loading…'}
        ${auth === 'read-only' ? html`<span class="badge warn" data-testid="read-only">read-only token</span>` : null}
        ${getToken() ? html`<button class="link" onClick=${props.onSignOut}>forget token</button>` : null}
      </div>
    </header>
  `
}

function TokenPrompt(props: { onSave: (token: string) => void; rejected: boolean }) {
  const [value, setValue] = useState('')
  return html`
    <section class="card token" data-testid="token-prompt">
      <h2>Access token</h2>
      <p>This controller requires a bearer token${props.rejected ? ', and the one given was not accepted' : ''}. It is kept in this browser tab only.</p>
      <form
        onSubmit=${(e: Event) => {
          e.preventDefault()
          props.onSave(value.trim())
        }}
      >
        <input type="password" name="token" autocomplete="off" placeholder="token" value=${value} onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)} />
        <button type="submit" disabled=${value.trim() === ''}>Use token</button>
      </form>
    </section>
  `
}

function GroupRow(props: {
  group: GroupView
  reports: Map<string, WorkerPartitionReport & { worker: string }>
  expanded: boolean
  onToggle: () => void
  onAction: (group: string, action: 'start' | 'stop' | 'delete') => void
  busy: boolean
  writable: boolean
}) {
  const { group, reports } = props
  let mirrored = 0
  let recordsPerSec = 0
  let bytesPerSec = 0
  // The group status carries each owner's figures (computed once, by the controller); reports
  // are the fallback for a controller that predates them.
  const rows = group.partitions.map((p) => {
    const report = reports.get(key({ group: group.name, topic: p.topic, partition: p.partition }))
    const own = report?.worker === p.worker ? report : undefined
    const figures = { recordsMirrored: p.recordsMirrored ?? own?.recordsMirrored ?? 0, recordsPerSec: p.recordsPerSec ?? own?.recordsPerSec ?? 0, bytesPerSec: p.bytesPerSec ?? own?.bytesPerSec ?? 0 }
    mirrored += figures.recordsMirrored
    recordsPerSec += figures.recordsPerSec
    bytesPerSec += figures.bytesPerSec
    return { ...p, report: figures }
  })
  const error = group.status.error ?? group.status.lagError ?? group.partitions.find((p) => p.error)?.error
  const notServed = Object.values(group.status.drift ?? {}).reduce((sum, n) => sum + n, 0)
  const topics = group.spec.topics?.join(', ') ?? `/${group.spec.topicPattern ?? ''}/`
  return html`
    <tr class="group" data-testid=${`group-${group.name}`} data-state=${group.state}>
      <td>
        <button class="link" onClick=${props.onToggle} aria-expanded=${props.expanded}>${props.expanded ? '▾' : '▸'} ${group.name}</button>
        <a class="history-link" href=${`#/groups/${encodeURIComponent(group.name)}`} data-testid="history-link" title="today over yesterday, lag, latency">history</a>
      </td>
      <td><span class=${`badge state-${group.state}`} data-testid="group-state">${group.state}</span></td>
      <td>${group.spec.sourceCluster} → ${group.spec.targetCluster}</td>
      <td class="topics" title=${topics}>${topics}</td>
      <td class="num">${group.status.assignedPartitions}</td>
      <td class="num" data-testid="group-mirrored">${fmt(mirrored)}</td>
      <td class="num">${fmt(recordsPerSec)} rec/s<br /><small>${bytes(bytesPerSec)}</small></td>
      <td class="num" data-testid="group-lag">${fmt(group.status.lag)}</td>
      <td class="health">
        ${error ? html`<span class="badge bad" title=${error.message}>${error.code}</span> <small>${error.message}</small>` : group.state === 'running' && notServed === 0 ? html`<span class="badge ok">healthy</span>` : ''}
        ${notServed > 0 ? html` <span class=${`badge ${(group.status.unservedPastGrace ?? 0) > 0 ? 'bad' : 'warn'}`} data-testid="group-drift" title=${driftTitle(group.status.drift ?? {})}>${notServed} not served</span>` : ''}
        ${(group.status.quarantined ?? []).map((q) => html` <span class="badge warn" data-testid="group-quarantined" title=${`until ${q.until}: ${q.reason}`}>${q.worker} quarantined</span>`)}
      </td>
      <td class="actions">
        ${group.state === 'running'
          ? html`<button data-testid="stop" disabled=${props.busy || !props.writable} onClick=${() => props.onAction(group.name, 'stop')}>Stop</button>`
          : html`<button data-testid="start" disabled=${props.busy || !props.writable} onClick=${() => props.onAction(group.name, 'start')}>Start</button>`}
        <button class="danger" disabled=${props.busy || !props.writable} onClick=${() => props.onAction(group.name, 'delete')}>Delete</button>
      </td>
    </tr>
    ${props.expanded
      ? html`<tr class="partitions">
          <td colspan="10">
            ${rows.length === 0
              ? html`<p class="muted">No partitions assigned${group.state === 'stopped' ? ' (stopped)' : ''}.</p>`
              : html`<table data-testid=${`partitions-${group.name}`}>
                  <thead>
                    <tr><th>topic</th><th>partition</th><th>target topic</th><th>worker</th><th>state</th><th>served</th><th class="num">position</th><th class="num">high watermark</th><th class="num">lag</th><th class="num">mirrored</th><th class="num">rec/s</th><th class="num">bytes/s</th></tr>
                  </thead>
                  <tbody>
                    ${rows.map(
                      (p) => html`<tr>
                        <td>${p.topic}</td>
                        <td class="num">${p.partition}</td>
                        <td>${p.targetTopic}</td>
                        <td>${p.worker}</td>
                        <td>${p.error ? html`<span class="badge bad" title=${p.error.message}>${p.state}</span>` : p.state}</td>
                        <td data-testid="served">${servedBadge(p)}</td>
                        <td class="num">${fmt(p.position)}</td>
                        <td class="num">${fmt(p.highWatermark)}</td>
                        <td class="num">${fmt(p.lag)}</td>
                        <td class="num">${fmt(p.report?.recordsMirrored)}</td>
                        <td class="num">${fmt(p.report?.recordsPerSec)}</td>
                        <td class="num">${bytes(p.report?.bytesPerSec ?? 0)}</td>
                      </tr>`,
                    )}
                  </tbody>
                </table>`}
          </td>
        </tr>`
      : null}
  `
}

/** "not_reported 1, no_progress 2": the kinds that occur. */
function driftTitle(drift: Record<string, number>): string {
  return Object.entries(drift)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ')
}

function servedBadge(p: { served?: string; sinceMs?: number }) {
  if (p.served === undefined) return '–'
  if (p.served === 'serving') return html`<span class="badge ok">serving</span>`
  const since = p.sinceMs === undefined ? '' : ` ${Math.floor(p.sinceMs / 1000)} s`
  return html`<span class="badge warn" title="not served as assigned">${p.served.replace(/_/g, ' ')}${since}</span>`
}

function Groups(props: { snap: Snapshot; writable: boolean; onChanged: () => void; onAuthError: (error: ApiError) => void }) {
  const { snap } = props
  const [expanded, setExpanded] = useState<Set<string>>(new Set())
  const [busy, setBusy] = useState<string | null>(null)
  const [actionError, setActionError] = useState<string | null>(null)
  const reports = reportsByPartition(snap.workers.workers)
  const onAction = (group: string, action: 'start' | 'stop' | 'delete'): void => {
    if (action === 'delete' && !window.confirm(`Delete topic group "${group}"? Mirroring stops; data already on the target stays.`)) return
    setBusy(group)
    setActionError(null)
    const call = action === 'delete' ? request('DELETE', `v1/groups/${encodeURIComponent(group)}`) : request('POST', `v1/groups/${encodeURIComponent(group)}/${action}`)
    call
      .then(() => props.onChanged())
      .catch((error: unknown) => {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) props.onAuthError(error)
        setActionError(`${action} ${group}: ${error instanceof Error ? error.message : String(error)}`)
      })
      .finally(() => setBusy(null))
  }
  return html`
    <section class="card">
      <h2>Topic groups <small class="muted">${snap.groups.length}</small></h2>
      ${actionError ? html`<p class="error" data-testid="action-error">${actionError}</p>` : null}
      ${snap.errors.groups ? html`<p class="error">${snap.errors.groups}</p>` : null}
      ${snap.groups.length === 0
        ? html`<p class="muted">No topic groups yet: create one below.</p>`
        : html`<table class="groups">
            <thead>
              <tr><th>name</th><th>state</th><th>clusters</th><th>topics</th><th class="num">partitions</th><th class="num">mirrored</th><th class="num">throughput</th><th class="num">lag</th><th>health</th><th></th></tr>
            </thead>
            <tbody>
              ${snap.groups.map(
                (group) =>
                  html`<${GroupRow}
                    key=${group.name}
                    group=${group}
                    reports=${reports}
                    expanded=${expanded.has(group.name)}
                    busy=${busy === group.name}
                    writable=${props.writable}
                    onAction=${onAction}
                    onToggle=${() => {
                      const next = new Set(expanded)
                      if (next.has(group.name)) next.delete(group.name)
                      else next.add(group.name)
                      setExpanded(next)
                    }}
                  />`,
              )}
            </tbody>
          </table>`}
    </section>
  `
}

function assignedSummary(partitions: Array<{ group: string; topic: string; partition: number }>): string {
  const byTopic = new Map<string, number[]>()
  for (const p of partitions) byTopic.set(`${p.group}: ${p.topic}`, [...(byTopic.get(`${p.group}: ${p.topic}`) ?? []), p.partition])
  return [...byTopic].map(([topic, list]) => `${topic} [${list.sort((a, b) => a - b).join(',')}]`).join('; ')
}

function WorkersCard(props: { snap: Snapshot }) {
  const { snap } = props
  const leader = snap.ready?.leader
  const workers = [...snap.workers.workers].sort((a, b) => a.id.localeCompare(b.id))
  const known = new Set(workers.map((w) => w.id))
  // Assignments to workers missing from the registry are what an operator most needs to see.
  const unseen = Object.entries(snap.assignments).filter(([id, record]) => !known.has(id) && record.partitions.length > 0)
  return html`
    <section class="card">
      <h2>Workers <small class="muted">${workers.length} live</small></h2>
      ${snap.errors.workers ? html`<p class="error">${snap.errors.workers}</p>` : null}
      <table data-testid="workers">
        <thead>
          <tr><th>worker</th><th>zone</th><th>host</th><th class="num">partitions</th><th class="num">rec/s</th><th class="num">bytes/s</th><th class="num">heartbeat age</th><th>assigned partitions</th></tr>
        </thead>
        <tbody>
          ${workers.map((w) => {
            // Own keys only: a worker named `constructor` must not find Object.prototype's.
            const assigned = (Object.hasOwn(snap.assignments, w.id) ? snap.assignments[w.id]?.partitions : undefined) ?? []
            return html`<tr data-testid=${`worker-${w.id}`}>
              <td>${w.id}</td>
              <td class="nowrap">${w.zone ?? '–'}${w.dc ? ` / ${w.dc}` : ''}</td>
              <td>${w.host} <small class="muted">pid ${w.pid}</small></td>
              <td class="num">${assigned.length}</td>
              <td class="num">${fmt(w.load?.recordsPerSec)}</td>
              <td class="num">${bytes(w.load?.bytesPerSec ?? 0)}</td>
              <td class="num">${age(w.lastHeartbeatAt, snap.at)}</td>
              <td class="assigned">${assignedSummary(assigned) || html`<span class="muted">none</span>`}</td>
            </tr>`
          })}
          ${unseen.map(
            ([id, record]) => html`<tr class="unseen">
              <td>${id}</td>
              <td colspan="6"><span class="badge bad">not in the registry</span></td>
              <td class="assigned">${assignedSummary(record.partitions)}</td>
            </tr>`,
          )}
        </tbody>
      </table>
      <h3>Controllers</h3>
      <ul class="controllers">
        ${snap.workers.controllers.map(
          (c) => html`<li>
            <strong>${c.id}</strong> ${c.id === leader ? html`<span class="badge ok">leader</span>` : html`<span class="badge">follower</span>`}
            <small class="muted">${c.url ?? c.host} · heartbeat ${age(c.lastHeartbeatAt, snap.at)} ago</small>
          </li>`,
        )}
      </ul>
    </section>
  `
}

const CHECK_TITLES: Record<string, string> = { reachable: 'reachable', process: 'process running', probe: 'probe answered' }

/** Rheos's node status: per node the three checks, and in words why a check fails. */
function NodesCard(props: { snap: Snapshot }) {
  const { nodes } = props.snap
  const failing = nodes?.nodes.filter((n) => n.status === 'failing').length ?? 0
  const badge = (ok: boolean | null | undefined, reason: string | undefined) =>
    html`<span class=${`badge ${ok === true ? 'ok' : ok === false ? 'bad' : 'warn'}`} title=${reason ?? ''}>${ok === true ? 'ok' : ok === false ? 'fails' : 'unknown'}</span>`
  return html`
    <section class="card">
      <h2>Nodes ${nodes ? html`<small class="muted">${failing > 0 ? `${failing} failing · ` : ''}checked ${age(nodes.checkedAt, props.snap.at)} ago by ${nodes.checkedBy}</small>` : null}</h2>
      ${props.snap.errors.nodes ? html`<p class="error">${props.snap.errors.nodes}</p>` : null}
      <table data-testid="nodes">
        <thead>
          <tr><th>node</th><th>role</th><th>host</th>${['reachable', 'process', 'probe'].map((c) => html`<th>${CHECK_TITLES[c]}</th>`)}<th>why not</th></tr>
        </thead>
        <tbody>
          ${(nodes?.nodes ?? []).map(
            (n) => html`<tr data-testid=${`node-${n.id}`} class=${n.status === 'failing' ? 'failing' : ''}>
              <td>${n.id}</td>
              <td>${n.role}</td>
              <td>${n.host} <small class="muted">pid ${n.pid}</small></td>
              ${['reachable', 'process', 'probe'].map((name) => {
                const check = n.checks.find((c) => c.check === name)
                return html`<td data-check=${name}>${badge(check?.ok, check?.reason)}</td>`
              })}
              <td class="reason" data-testid=${`node-reason-${n.id}`}>${[...new Set(n.checks.filter((c) => c.ok !== true).map((c) => c.reason))].join('; ') || html`<span class="muted">–</span>`}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </section>
  `
}

function Events(props: { snap: Snapshot }) {
  return html`
    <section class="card">
      <h2>Recent events</h2>
      ${props.snap.errors.events ? html`<p class="error">${props.snap.errors.events}</p>` : null}
      ${props.snap.events.length === 0
        ? html`<p class="muted">Nothing yet.</p>`
        : html`<ul class="events" data-testid="events">
            ${props.snap.events.map(
              (e) => html`<li class=${`event ${e.type}`}>
                <time datetime=${e.at}>${new Date(e.at).toLocaleTimeString()}</time>
                <span class=${`badge ${e.type === 'group_error' || e.type === 'worker_left' ? 'bad' : e.type === 'rebalance' ? 'warn' : ''}`}>${e.type.replace('_', ' ')}</span>
                ${e.group ? html`<strong>${e.group}</strong>` : null} ${e.worker ? html`<strong>${e.worker}</strong>` : null}
                <span>${e.message}</span>
              </li>`,
            )}
          </ul>`}
    </section>
  `
}

interface FormState {
  name: string
  sourceCluster: string
  targetCluster: string
  topics: string
  topicPattern: string
  prefix: string
  startPosition: string
  delivery: string
  strategy: string
  maxBytesPerSec: string
  start: boolean
}

const EMPTY_FORM: FormState = { name: '', sourceCluster: '', targetCluster: '', topics: '', topicPattern: '', prefix: '', startPosition: 'earliest', delivery: 'at-least-once', strategy: 'balanced', maxBytesPerSec: '', start: true }

/** The request body: empty fields are left out so the API applies its defaults and reports what is missing. */
function groupBody(form: FormState): Record<string, unknown> {
  const body: Record<string, unknown> = { name: form.name.trim(), sourceCluster: form.sourceCluster, targetCluster: form.targetCluster, startPosition: form.startPosition, delivery: form.delivery, strategy: form.strategy, start: form.start }
  const topics = form.topics.split(/[\s,]+/).filter((t) => t !== '')
  if (topics.length > 0) body.topics = topics
  if (form.topicPattern.trim() !== '') body.topicPattern = form.topicPattern.trim()
  if (form.prefix.trim() !== '') body.rename = { prefix: form.prefix.trim() }
  if (form.maxBytesPerSec.trim() !== '') {
    const n = Number(form.maxBytesPerSec)
    // Sent as typed when it is not a number, so the API's own message names the field.
    body.maxBytesPerSec = Number.isFinite(n) ? n : form.maxBytesPerSec
  }
  for (const field of ['name', 'sourceCluster', 'targetCluster'] as const) if (body[field] === '') delete body[field]
  return body
}

function CreateGroup(props: { clusters: ClusterView[]; writable: boolean; onCreated: (name: string) => void; onAuthError: (error: ApiError) => void }) {
  const [form, setForm] = useState<FormState>(EMPTY_FORM)
  const [problems, setProblems] = useState<FieldProblem[]>([])
  const [message, setMessage] = useState<{ kind: 'error' | 'ok'; text: string } | null>(null)
  const [sending, setSending] = useState(false)
  const set = (field: keyof FormState) => (e: Event) => {
    const target = e.target as HTMLInputElement
    setForm({ ...form, [field]: target.type === 'checkbox' ? target.checked : target.value })
  }
  const problemFor = (...fields: string[]) => {
    const found = problems.filter((p) => fields.some((f) => p.field === f || p.field.startsWith(`${f}.`)))
    return found.length === 0 ? null : html`<span class="field-error" data-testid=${`error-${fields[0] ?? ''}`}>${found.map((p) => p.message).join('; ')}</span>`
  }
  const submit = (e: Event): void => {
    e.preventDefault()
    setSending(true)
    setMessage(null)
    setProblems([])
    request<{ name: string; state: string }>('POST', 'v1/groups', groupBody(form))
      .then((created) => {
        setMessage({ kind: 'ok', text: `created topic group "${created.name}" (${created.state})` })
        setForm(EMPTY_FORM)
        props.onCreated(created.name)
      })
      .catch((error: unknown) => {
        if (error instanceof ApiError) {
          if (error.status === 401 || error.status === 403) props.onAuthError(error)
          setProblems(error.fieldProblems())
          setMessage({ kind: 'error', text: `${error.code}: ${error.message}` })
        } else {
          setMessage({ kind: 'error', text: String(error) })
        }
      })
      .finally(() => setSending(false))
  }
  const clusterOptions = props.clusters.map((c) => html`<option value=${c.name}>${c.name}${c.dc ? ` (${c.dc})` : ''}</option>`)
  const select = (field: 'sourceCluster' | 'targetCluster') => html`
    <select name=${field} value=${form[field]} onChange=${set(field)}>
      <option value="">choose a cluster</option>
      ${clusterOptions}
    </select>
  `
  return html`
    <section class="card">
      <h2>Create a topic group</h2>
      <form class="create" data-testid="create-group" onSubmit=${submit}>
        <fieldset disabled=${!props.writable || sending}>
          <label>name <input name="name" value=${form.name} onInput=${set('name')} placeholder="orders-to-dc2" />${problemFor('name')}</label>
          <label>source cluster ${select('sourceCluster')}${problemFor('sourceCluster')}</label>
          <label>target cluster ${select('targetCluster')}${problemFor('targetCluster')}</label>
          <label>topics <input name="topics" value=${form.topics} onInput=${set('topics')} placeholder="orders, payments" />${problemFor('topics')}</label>
          <label>or topic pattern <input name="topicPattern" value=${form.topicPattern} onInput=${set('topicPattern')} placeholder="orders\\..*" />${problemFor('topicPattern')}</label>
          <label>rename prefix <input name="prefix" value=${form.prefix} onInput=${set('prefix')} placeholder="dc1." />${problemFor('rename')}</label>
          <label>start position
            <select name="startPosition" value=${form.startPosition} onChange=${set('startPosition')}><option>earliest</option><option>latest</option></select>${problemFor('startPosition')}
          </label>
          <label>delivery
            <select name="delivery" value=${form.delivery} onChange=${set('delivery')}><option>at-least-once</option><option>exactly-once</option></select>${problemFor('delivery')}
          </label>
          <label>strategy
            <select name="strategy" value=${form.strategy} onChange=${set('strategy')}><option>balanced</option><option>load-aware</option><option>zone-aware</option></select>${problemFor('strategy')}
          </label>
          <label>max bytes/s <input name="maxBytesPerSec" value=${form.maxBytesPerSec} onInput=${set('maxBytesPerSec')} placeholder="no limit" />${problemFor('maxBytesPerSec')}</label>
          <label class="check"><input type="checkbox" name="start" checked=${form.start} onChange=${set('start')} /> start mirroring now</label>
          <button type="submit" data-testid="create-submit">${sending ? 'Creating…' : 'Create group'}</button>
        </fieldset>
        ${message ? html`<p class=${message.kind === 'error' ? 'error' : 'ok'} data-testid="form-message">${message.text}</p>` : null}
        ${problems.some((p) => p.field === '(body)') ? html`<p class="error">${problems.filter((p) => p.field === '(body)').map((p) => p.message).join('; ')}</p>` : null}
        ${!props.writable ? html`<p class="muted">This token is read-only: creating, starting and stopping groups is disabled.</p>` : null}
      </form>
    </section>
  `
}

/** The group named by the location's hash (`#/groups/<name>`), or null for the overview. */
function groupInHash(): string | null {
  const match = /^#\/groups\/([^/]+)$/.exec(window.location.hash)
  if (!match?.[1]) return null
  try {
    return decodeURIComponent(match[1])
  } catch {
    return null
  }
}

function App() {
  const [page, setPage] = useState<string | null>(groupInHash())
  useEffect(() => {
    const onHash = (): void => setPage(groupInHash())
    window.addEventListener('hashchange', onHash)
    return () => window.removeEventListener('hashchange', onHash)
  }, [])
  const [snap, setSnap] = useState<Snapshot | null>(null)
  const [auth, setAuth] = useState<AuthState>('open')
  const [rejected, setRejected] = useState(false)
  const [failing, setFailing] = useState<string | null>(null)
  const timer = useRef<number | undefined>(undefined)
  const inFlight = useRef(false)

  const onAuthError = useCallback((error: ApiError) => {
    if (error.status === 401) {
      setRejected(getToken() !== null)
      setAuth('needs-token')
    } else if (error.status === 403) {
      setAuth('read-only')
    }
  }, [])

  const refresh = useCallback(() => {
    if (inFlight.current) return
    inFlight.current = true
    loadSnapshot()
      .then((next) => {
        setSnap(next)
        setFailing(null)
        // A token that can read everything but was refused a write stays read-only.
        setAuth((current) => (current === 'needs-token' ? 'open' : current))
      })
      .catch((error: unknown) => {
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) onAuthError(error)
        else setFailing(error instanceof Error ? error.message : String(error))
      })
      .finally(() => {
        inFlight.current = false
      })
  }, [onAuthError])

  useEffect(() => {
    refresh()
    const tick = (): void => {
      // No point polling while hidden; catch up as soon as the tab is visible again.
      if (document.visibilityState === 'visible') refresh()
      timer.current = window.setTimeout(tick, POLL_INTERVAL_MS)
    }
    timer.current = window.setTimeout(tick, POLL_INTERVAL_MS)
    document.addEventListener('visibilitychange', refresh)
    return () => {
      window.clearTimeout(timer.current)
      document.removeEventListener('visibilitychange', refresh)
    }
  }, [refresh])

  const writable = auth !== 'read-only'
  return html`
    <${Header}
      snap=${snap}
      auth=${auth}
      failing=${failing}
      onSignOut=${() => {
        setToken(null)
        setAuth('open')
        refresh()
      }}
    />
    <main>
      ${auth === 'needs-token'
        ? html`<${TokenPrompt}
            rejected=${rejected}
            onSave=${(token: string) => {
              setToken(token)
              setAuth('open')
              refresh()
            }}
          />`
        : page !== null
          ? html`<${GroupHistoryPage} key=${page} name=${page} onAuthError=${onAuthError} />`
          : snap === null
          ? html`<p class="loading">Loading…</p>`
          : html`
              <${Groups} snap=${snap} writable=${writable} onChanged=${refresh} onAuthError=${onAuthError} />
              <div class="columns">
                <${WorkersCard} snap=${snap} />
                <${Events} snap=${snap} />
              </div>
              <${NodesCard} snap=${snap} />
              <${CreateGroup} clusters=${snap.clusters} writable=${writable} onCreated=${refresh} onAuthError=${onAuthError} />
            `}
    </main>
  `
}

const root = document.getElementById('app')
if (root) {
  root.textContent = ''
  render(html`<${App} />`, root)
}
