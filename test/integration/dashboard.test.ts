/**
 * The web dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core)
 * against a real controller and two workers (each under bootstrap) on the real stack: the page
 * shows the leader and both workers, the create form shows the API's validation errors by field,
 * a group created through the form runs with mirrored counts rising while a producer writes, and
 * the Stop button stops it. A screenshot of the live dashboard is saved to
 * docs/screenshots/dashboard.png. The group's page draws today's records/s over yesterday's
 * (seeded into Redis through the history store), lag, latency and the event marks with uPlot:
 * checked in the chart's data and in the canvas pixels, screenshot in
 * docs/screenshots/group-history.png; `ferry group NAME --history` prints the same figures.
 */
import { execFile } from 'node:child_process'
import { createServer, type AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { chromium, type Browser, type Page } from 'playwright-core'
import { ensureDebianTool, type LocalStack } from '../../deploy/local-stack.js'
import { createKeys } from '../../common/keys.js'
import { createRegistration, listInstances } from '../../common/registry.js'
import { silentLogger } from '../../common/logger.js'
import type { ClusterSpec } from '../../common/config.js'
import { kafkajsClients } from '../../worker/kafka-clients.js'
import { createHistoryStore, emptyBucket, minuteOf, redisHistoryBackend, MINUTE_MS } from '../../controller/history.js'
import { LATENCY_BOUNDS_MS, emptyLatencyCounts } from '../../common/latency.js'
import { FerryProcess, http, sharedStack, uniqueName, waitFor } from './harness.js'
import { createSampleProducer, createTopic } from './kafka-helpers.js'

const CHROMIUM = '/usr/bin/chromium'
const SCREENSHOT = fileURLToPath(new URL('../../../docs/screenshots/dashboard.png', import.meta.url))
const HISTORY_SCREENSHOT = fileURLToPath(new URL('../../../docs/screenshots/group-history.png', import.meta.url))
const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url))
const DAY_MS = 24 * 3600000
/** What the seeded yesterday shows at minute `t`: a slow wave between 100 and 300 records/s. */
const yesterdayRate = (t: number): number => Math.round(200 + 100 * Math.sin(t / (20 * MINUTE_MS)))
/** What the seeded earlier hour of today shows (before this suite's group ran): another wave. */
const earlierTodayRate = (t: number): number => Math.round(150 + 50 * Math.cos(t / (15 * MINUTE_MS)))

/** Pixels of `canvas` (a CSS selector) within a few levels of each colour (#rrggbb), by colour. */
async function pixelCounts(page: Page, selector: string, colours: readonly string[]): Promise<number[]> {
  // Runs in the page (a string: this file is compiled without the DOM's types).
  return page.evaluate(`(([sel, list]) => {
    const canvas = document.querySelector(sel)
    if (canvas === null) return list.map(() => -1)
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
    const rgb = list.map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)))
    const counts = list.map(() => 0)
    for (let i = 0; i < data.length; i += 4) {
      rgb.forEach(([r, g, b], k) => {
        if (Math.abs(data[i] - r) <= 6 && Math.abs(data[i + 1] - g) <= 6 && Math.abs(data[i + 2] - b) <= 6 && data[i + 3] > 200) counts[k]++
      })
    }
    return counts
  })(${JSON.stringify([selector, colours])})`)
}

/** Debian's chromium, installed with apt when missing (CI runs as root on a fresh machine). */
async function ensureChromium(): Promise<void> {
  await ensureDebianTool('chromium', 'chromium', `${CHROMIUM} is missing and we are not root: apt-get install chromium`, { log: (line) => process.stderr.write(`      [dashboard] ${line}\n`) })
  if (!existsSync(CHROMIUM)) throw new Error(`chromium is installed but ${CHROMIUM} does not exist`)
}

/** The number in a cell such as "1,234"; NaN for "–". */
const numberIn = (text: string | null): number => Number((text ?? '').replace(/[^\d]/g, '') || NaN)

describe('web dashboard in headless Chromium (real controller, two workers, real Kafka)', function () {
  this.timeout(300000)
  let stack: LocalStack
  let redis: Redis
  let browser: Browser | undefined
  let page: Page
  const deployment = uniqueName('ui')
  const procs: FerryProcess[] = []
  let controllerUrl = ''
  const topic = uniqueName('clicks')
  const group = uniqueName('g-ui')
  const pageErrors: string[] = []
  let producing = true
  let producer: ReturnType<typeof createSampleProducer> | undefined
  let production: Promise<void> | undefined

  const common = (): string[] => ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '4000', '--rebalance-debounce-ms', '1000']
  const groupRow = () => page.getByTestId(`group-${group}`)

  /** Minutes before this one are free for seeding: the suite's group did not run then. */
  const suiteStartedAt = Date.now()

  before(async function () {
    this.timeout(600000)
    await ensureChromium()
    stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    procs.push(new FerryProcess('ui-controller', ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', ...common()]))
    procs.push(new FerryProcess('ui-worker-w1', ['bootstrap', '--role', 'worker', '--id', 'w1', '--zone', 'zone-a', ...common()]))
    const keys = createKeys(deployment)
    const controller = await waitFor('controller and w1 registered in Redis', async () => {
      const instances = await listInstances(redis, keys)
      const c = instances.find((i) => i.role === 'controller' && i.url)
      return c && instances.some((i) => i.id === 'w1') ? c : undefined
    }, 90000)
    controllerUrl = controller.url as string
    await waitFor('the leader elected', async () => (await http('GET', `${controllerUrl}/readyz`)).body?.leader === 'c1')
    // Two reconcile passes after w1 registered: the leader has seen w1, so w2 arriving is a
    // "worker joined" event.
    const passes = async (): Promise<number> => Number(/^ferry_controller_reconcile_seconds_count(?:{[^}]*})? (\d+)/m.exec((await http('GET', `${controllerUrl}/metrics`)).text)?.[1] ?? 0)
    const passesBefore = await passes()
    await waitFor('two reconcile passes that saw w1', async () => (await passes()) >= passesBefore + 2, 30000)
    procs.push(new FerryProcess('ui-worker-w2', ['bootstrap', '--role', 'worker', '--id', 'w2', '--zone', 'zone-b', ...common()]))
    await waitFor('w2 registered', async () => (await listInstances(redis, keys)).some((i) => i.id === 'w2'), 90000)
    for (const cluster of [
      { name: 'src', bootstrapServers: [stack.source.plaintext], dc: 'dc1' },
      { name: 'dst', bootstrapServers: [stack.target.plaintext], dc: 'dc2' },
    ]) {
      const created = await http('POST', `${controllerUrl}/v1/clusters`, cluster)
      expect(created.status, created.text).to.equal(201)
    }
    await createTopic(stack.source.plaintext, topic, 4)
    // Steady traffic for the whole test, so mirrored counts keep rising; bounded in count and time.
    producer = createSampleProducer(stack.source.plaintext, topic, 4)
    const sampleProducer = producer
    production = (async () => {
      const until = Date.now() + 240000
      while (producing && Date.now() < until) {
        await sampleProducer.send(40)
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    })()

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
    page = await browser.newPage({ viewport: { width: 1440, height: 1000 } })
    page.on('pageerror', (error) => pageErrors.push(`page error: ${error.message}`))
    page.on('console', (message) => {
      // Failed responses are checked below, with their URL.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) pageErrors.push(`console: ${message.text()}`)
    })
    page.on('response', (response) => {
      // The form's validation error is the one failure this test provokes.
      const expected = response.status() === 400 && response.request().method() === 'POST' && new URL(response.url()).pathname === '/v1/groups'
      if (response.status() >= 400 && !expected) pageErrors.push(`${response.status()} for ${response.request().method()} ${response.url()}`)
    })
    page.on('requestfailed', (request) => pageErrors.push(`request failed: ${request.url()}`))
  })

  after(async function () {
    this.timeout(90000)
    producing = false
    await production?.catch(() => undefined)
    await producer?.close().catch(() => undefined)
    await browser?.close()
    await Promise.all(procs.map((p) => p.stop(20000)))
    redis?.disconnect()
  })

  it('serves the page from the controller with only same-origin assets', async () => {
    const response = await page.goto(`${controllerUrl}/ui/`)
    expect(response?.status()).to.equal(200)
    expect(response?.headers()['content-security-policy']).to.include("default-src 'self'")
    const html = await http('GET', `${controllerUrl}/ui/`)
    expect(html.text).to.include('<script type="module" src="app.js">')
    expect(html.text).not.to.match(/https?:\/\//)
    const js = await http('GET', `${controllerUrl}/ui/app.js`)
    expect(js.status).to.equal(200)
    // The root redirects to the dashboard.
    const root = await fetch(`${controllerUrl}/`, { redirect: 'manual' })
    expect(root.status).to.equal(302)
    expect(root.headers.get('location')).to.equal('/ui/')
  })

  it('shows the controller leader and both workers with zone, heartbeat age and a join event', async () => {
    await page.getByTestId('leader').filter({ hasText: 'c1' }).waitFor()
    for (const [id, zone] of [['w1', 'zone-a'], ['w2', 'zone-b']] as const) {
      const row = page.getByTestId(`worker-${id}`)
      await row.waitFor()
      const cells = await row.locator('td').allInnerTexts()
      expect(cells[0]).to.equal(id)
      expect(cells[1]).to.include(zone)
      expect(cells[6]).to.match(/^\d+\.\d s$/)
    }
    await page.getByTestId('events').getByText('worker w2 joined').waitFor({ timeout: 30000 })
  })

  it('shows the API validation errors next to the form fields', async () => {
    const form = page.getByTestId('create-group')
    await form.locator('input[name=name]').fill('bad name!')
    await form.locator('select[name=sourceCluster]').selectOption('src')
    await form.locator('select[name=targetCluster]').selectOption('dst')
    await form.getByTestId('create-submit').click()
    const message = await form.getByTestId('form-message').innerText()
    expect(message).to.include('INVALID_INPUT')
    expect(await form.getByTestId('error-name').innerText()).to.match(/letters|digits|name/i)
    expect(await form.getByTestId('error-topics').innerText()).to.include('exactly one of topics or topicPattern is required')
    expect((await http('GET', `${controllerUrl}/v1/groups`)).body.groups).to.deep.equal([])
  })

  it('creates a group through the form and shows it running with rising mirrored counts', async () => {
    const form = page.getByTestId('create-group')
    await form.locator('input[name=name]').fill(group)
    await form.locator('input[name=topics]').fill(topic)
    await form.getByTestId('create-submit').click()
    await form.getByTestId('form-message').filter({ hasText: `created topic group "${group}" (running)` }).waitFor()
    expect(await form.getByTestId('error-topics').count()).to.equal(0)

    await groupRow().and(page.locator('[data-state=running]')).waitFor()
    const mirrored = groupRow().getByTestId('group-mirrored')
    const first = await waitFor('records mirrored shown for the new group', async () => {
      const value = numberIn(await mirrored.innerText())
      return value > 0 ? value : undefined
    }, 90000)
    const second = await waitFor('the mirrored count rising without a reload', async () => {
      const value = numberIn(await mirrored.innerText())
      return value > first ? value : undefined
    }, 60000)
    expect(second).to.be.greaterThan(first)

    // Per-partition detail: all four partitions, spread over both workers, with positions and lag.
    await groupRow().getByRole('button', { name: group }).click()
    const partitions = page.getByTestId(`partitions-${group}`)
    await waitFor('four partitions assigned to both workers', async () => {
      const workers = await partitions.locator('tbody tr td:nth-child(4)').allInnerTexts()
      return workers.length === 4 && new Set(workers).size === 2 ? workers : undefined
    }, 60000)
    const positions = (await partitions.locator('tbody tr td:nth-child(7)').allInnerTexts()).map(numberIn)
    expect(positions.every((p) => p > 0), `positions ${positions.join(',')}`).to.equal(true)
    // Each partition served by its assigned worker, and no drift on the group.
    await waitFor('every partition served', async () => {
      const served = await partitions.getByTestId('served').allInnerTexts()
      return served.length === 4 && served.every((s) => s.trim() === 'serving') ? served : undefined
    }, 60000)
    expect(await groupRow().getByTestId('group-drift').count()).to.equal(0)
    await page.getByTestId('events').getByText(/partitions? moved/).first().waitFor()
    await page.getByTestId('events').locator('li', { hasText: group }).getByText('topic group created (running)').waitFor()

    // The workers table lists what each one mirrors.
    const assigned = await page.getByTestId('worker-w1').locator('td.assigned').innerText()
    expect(assigned).to.include(`${group}: ${topic}`)

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true })
    await page.screenshot({ path: SCREENSHOT, fullPage: true })
    expect(existsSync(SCREENSHOT)).to.equal(true)
  })

  it("draws today's records/s over yesterday's, lag, latency and the event marks on the group's page", async () => {
    // Yesterday, as the leader would have written it, through the history store's own format.
    const history = createHistoryStore({ backend: redisHistoryBackend(redis), keys: createKeys(deployment) })
    const now = Date.now()
    const seeded = []
    for (let t = minuteOf(now - DAY_MS - 6 * 3600000); t <= minuteOf(now - DAY_MS + 10 * MINUTE_MS); t += MINUTE_MS) {
      const bucket = { ...emptyBucket(), samples: 4, recordsPerSecSum: 4 * yesterdayRate(t), bytesPerSecSum: 4 * 100 * yesterdayRate(t), lagSum: 40, lagSamples: 4, lagMax: 20 }
      seeded.push({ group, minuteMs: t, bucket })
    }
    // Earlier today, before this suite's group ran (as a previous leader would have written it):
    // today's line is then long enough to be seen on the canvas, not one minute's dot.
    for (let t = minuteOf(now - 3600000); t < minuteOf(suiteStartedAt) - MINUTE_MS; t += MINUTE_MS) {
      // End-to-end latency: 90 records within 50 ms, 10 within 500 ms (p50 50 ms, p99 500 ms).
      const latencyCounts = emptyLatencyCounts()
      latencyCounts[LATENCY_BOUNDS_MS.indexOf(50)] = 90
      latencyCounts[LATENCY_BOUNDS_MS.indexOf(500)] = 10
      const bucket = { ...emptyBucket(), samples: 4, recordsPerSecSum: 4 * earlierTodayRate(t), bytesPerSecSum: 4 * 100 * earlierTodayRate(t), lagSum: 40, lagSamples: 4, lagMax: 20, latencyCounts }
      seeded.push({ group, minuteMs: t, bucket })
    }
    await history.write(seeded)
    // The continuous audit's minutes of earlier today, as the leader writes them: two records
    // missing a minute (final) for 20 minutes, one duplicate a minute for the 10 after.
    const audited = []
    for (let t = minuteOf(now - 50 * MINUTE_MS), i = 0; t < minuteOf(now - 20 * MINUTE_MS); t += MINUTE_MS, i++) {
      audited.push({ group, minuteMs: t, minute: { source: 100, target: i < 20 ? 98 : 101, missing: i < 20 ? 2 : 0, duplicates: i < 20 ? 0 : 1, deadLettered: 0, late: 0, final: true } })
    }
    await history.writeAudit(audited)
    // A group error 30 minutes ago, at the old end of the event log (newest first), as the controller records it.
    const errorAt = new Date(now - 30 * MINUTE_MS).toISOString()
    await redis.rpush(createKeys(deployment).events, JSON.stringify({ at: errorAt, type: 'group_error', controller: 'c1', group, code: 'TARGET_BEHIND', message: 'seeded: the target log ends before acknowledged records' }))

    // Today: the leader's samples of the running group (one every 15 s).
    const api = `${controllerUrl}/v1/groups/${group}/history`
    // Latency needs two samples of a partition (the first only sets the baseline): about 30 s of traffic.
    const today = await waitFor('today with traffic and latency in the history', async () => {
      const body = (await http('GET', `${api}?from=${now - 3600000}`)).body as { points: Array<{ t: number; recordsPerSec: number | null; latencyP99Ms: number | null }> }
      // Written by the leader from this suite's traffic (not seeded).
      const traffic = body.points.filter((p) => p.t >= minuteOf(suiteStartedAt) && (p.recordsPerSec ?? 0) > 0)
      return traffic.length >= 1 && body.points.some((p) => p.latencyP99Ms !== null) ? body : undefined
    }, 90000, 1000)
    expect(today.points.at(-1)?.t).to.be.at.least(minuteOf(now) - MINUTE_MS)
    for (const [query, field] of [['step=30s', 'step'], ['step=abc', 'step'], ['from=yesterday', 'from'], [`from=${now}&to=${now - 1}`, 'to'], [`from=0&to=${now}&step=1m`, 'step']] as const) {
      const refused = await http('GET', `${api}?${query}`)
      expect(refused.status, `${query}: ${refused.text}`).to.equal(400)
      expect(refused.body.error.details.map((d: { field: string }) => d.field), query).to.include(field)
    }
    expect((await http('GET', `${controllerUrl}/v1/groups/no-such-group/history`)).status).to.equal(404)

    await groupRow().getByTestId('history-link').click()
    try {
      await checkGroupPage()
    } finally {
      // Back to the overview for the tests that follow, whatever happened here.
      await page.goto(`${controllerUrl}/ui/#/`)
    }
    await groupRow().waitFor()
  })

  /** The group page's charts: data, pixels, screenshot; and the CLI's table. */
  async function checkGroupPage(): Promise<void> {
    await page.getByTestId('group-page').waitFor()
    // The last hour: today's few minutes of traffic are wide enough to count their pixels.
    await page.getByTestId('window-1h').click()
    const records = page.getByTestId('chart-records')
    await records.locator('canvas').waitFor()
    // The chart library's own data: x, today, yesterday (shifted onto today's axis).
    const data = await waitFor('today and yesterday in the chart', async () => {
      const d = await records.evaluate((el: unknown) => (el as { uplot?: { data: Array<Array<number | null>> } }).uplot?.data ?? null)
      // The 1-hour window's points (60 or 61, and the window's end), with today's traffic in them.
      return d !== null && (d[0] ?? []).length <= 62 && (d[1] ?? []).some((v) => (v ?? 0) > 0) ? d : undefined
    }, 30000)
    const [xs = [], todaySeries = [], yesterday = []] = data
    const earlier = xs.flatMap((x, i) => ((x as number) * 1000 < minuteOf(suiteStartedAt) - MINUTE_MS && todaySeries[i] !== null && todaySeries[i] !== undefined ? [[(x as number) * 1000, todaySeries[i]] as const] : []))
    expect(earlier.length, 'earlier-today points on the chart').to.be.at.least(30)
    for (const [t, v] of earlier) expect(v, `today at ${new Date(t).toISOString()}`).to.equal(earlierTodayRate(t))
    const checked = xs.flatMap((x, i) => (yesterday[i] === null || yesterday[i] === undefined ? [] : [[(x as number) * 1000, yesterday[i]] as const]))
    expect(checked.length, 'yesterday points on the chart').to.be.at.least(59)
    for (const [t, v] of checked) expect(v, `yesterday at ${new Date(t).toISOString()}`).to.equal(yesterdayRate(t - DAY_MS))
    const events = await page.getByTestId('history-events').innerText()
    expect(events).to.include('worker joined').and.include('rebalance').and.include('group error')
    // Drawn, not only held: each series and each kind of mark has pixels of its colour on the canvas.
    const colours = { today: '#1f6feb', yesterday: '#8c8c8c', rebalance: '#bf8700', joined: '#1a7f37', error: '#8250df' }
    const counts = await pixelCounts(page, '[data-testid=chart-records] canvas', Object.values(colours))
    const byName = Object.fromEntries(Object.keys(colours).map((name, i) => [name, counts[i]]))
    process.stderr.write(`      measured: pixels per colour on the records/s chart ${JSON.stringify(byName)}\n`)
    for (const [name, n] of Object.entries(byName)) expect(n, `${name} pixels`).to.be.greaterThan(20)
    mkdirSync(path.dirname(HISTORY_SCREENSHOT), { recursive: true })
    await page.screenshot({ path: HISTORY_SCREENSHOT, fullPage: true })
    // Lag and latency: values in the charts' data, and drawn. p50 and p99 often share a latency
    // bucket, where the narrower p50 line covers the middle of the wider p99 one.
    const latency = await page.getByTestId('chart-latency').evaluate((el: unknown) => (el as { uplot?: { data: Array<Array<number | null>> } }).uplot?.data ?? null)
    const lagData = await page.getByTestId('chart-lag').evaluate((el: unknown) => (el as { uplot?: { data: Array<Array<number | null>> } }).uplot?.data ?? null)
    process.stderr.write(`      measured: lag ${JSON.stringify(lagData?.[1]?.filter((v) => v !== null))}, p99 ${JSON.stringify(latency?.[1]?.filter((v) => v !== null))}, p50 ${JSON.stringify(latency?.[2]?.filter((v) => v !== null))}\n`)
    expect(lagData?.[1]?.some((v) => v !== null), 'lag points').to.equal(true)
    expect(latency?.[1]?.some((v) => (v ?? 0) > 0) && latency?.[2]?.some((v) => (v ?? 0) > 0), 'latency p99 and p50 points').to.equal(true)
    const [[lagPixels = 0] = [], latencyPixels = []] = await Promise.all([
      pixelCounts(page, '[data-testid=chart-lag] canvas', ['#0a7b83']),
      pixelCounts(page, '[data-testid=chart-latency] canvas', ['#1f6feb', '#bc4c00']),
    ])
    process.stderr.write(`      measured: pixels lag ${lagPixels}, latency p50/p99 ${JSON.stringify(latencyPixels)}\n`)
    expect(lagPixels, 'lag pixels').to.be.greaterThan(20)
    // Earlier today's seeded latency (p99 500 ms, p50 50 ms) gives each line its own stretch.
    expect(latency?.[1]?.filter((v) => v === 500).length, 'seeded p99 points').to.be.at.least(30)
    expect(latency?.[2]?.filter((v) => v === 50).length, 'seeded p50 points').to.be.at.least(30)
    expect(latencyPixels[0] ?? 0, 'latency p50 pixels').to.be.greaterThan(20)
    expect(latencyPixels[1] ?? 0, 'latency p99 pixels').to.be.greaterThan(20)
    // The continuous audit's chart: final missing records and duplicates per minute, drawn.
    const auditData = await page.getByTestId('chart-audit').evaluate((el: unknown) => (el as { uplot?: { data: Array<Array<number | null>> } }).uplot?.data ?? null)
    expect(auditData?.[1]?.filter((v) => v === 2).length, 'final missing points').to.equal(20)
    expect(auditData?.[3]?.filter((v) => v === 1).length, 'duplicate points').to.equal(10)
    const auditPixels = await pixelCounts(page, '[data-testid=chart-audit] canvas', ['#e0115f', '#6e5494'])
    process.stderr.write(`      measured: pixels audit missing/duplicates ${JSON.stringify(auditPixels)}\n`)
    expect(auditPixels[0] ?? 0, 'audit missing pixels').to.be.greaterThan(20)
    expect(auditPixels[1] ?? 0, 'audit duplicate pixels').to.be.greaterThan(20)


    // The CLI's table: today's figures with yesterday's beside them.
    const text = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [CLI, 'group', group, '--history', '--controller', controllerUrl, '--from=-45m', '--step', '5m'], { env: { ...process.env, FERRY_TOKEN: '' }, timeout: 30000 }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))),
    )
    const lines = text.trim().split('\n')
    expect(lines[0]).to.include(`history of "${group}"`)
    expect(lines[1]).to.match(/^TIME \(UTC\)\s+RECORDS\/S\s+YESTERDAY/)
    // Nine or ten 5-minute rows, each with yesterday's seeded rate; today's only where the group ran (the last ones).
    const rows = lines.slice(2).filter((l) => /^\d{4}-\d\d-\d\d \d\d:\d\d\s+(-|[\d,]+)\s+[\d,]+\s/.test(l))
    expect(rows.length, text).to.be.at.least(9)
    expect(rows.at(-1), text).to.match(/^\S+ \S+\s+[\d,]+\s+[\d,]+/)
    expect(text).to.include('worker_joined').and.include('rebalance')
    // The continuous audit's seeded minutes (all final): one duplicate a minute from 30 to 20 minutes ago.
    expect(lines[1]).to.match(/MISSING\s+DUPLICATES\s+LATE$/)
    const auditCells = rows.map((r) => r.trim().split(/\s+/).slice(-3))
    expect(auditCells.reduce((sum, [, duplicates]) => sum + (duplicates === '-' ? 0 : Number(duplicates)), 0), text).to.equal(10)
    expect(auditCells.filter(([missing]) => missing?.endsWith('?')), text).to.deep.equal([])

  }

  it('stops the group with its Stop button and shows the new state and event', async () => {
    await groupRow().getByTestId('stop').click()
    await groupRow().and(page.locator('[data-state=stopped]')).waitFor()
    await groupRow().getByTestId('start').waitFor()
    expect((await http('GET', `${controllerUrl}/v1/groups/${group}`)).body.state).to.equal('stopped')
    await page.getByTestId('events').locator('li', { hasText: group }).getByText('topic group stopped').waitFor()
    await waitFor('no partitions assigned any more', async () => (await http('GET', `${controllerUrl}/v1/groups/${group}`)).body.partitions.length === 0)
    expect(pageErrors, pageErrors.join('\n')).to.deep.equal([])
  })

  it("shows each node's checks, and in words why a node fails one", async () => {
    // A controller instance whose health port is closed (registered directly: a fake worker would be given partitions).
    const closed = createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    const gone = createRegistration({ redis, keys: createKeys(deployment), id: 'c9', info: { role: 'controller', host: hostname(), pid: process.pid, version: 'test', startedAt: new Date().toISOString(), healthUrl: `http://127.0.0.1:${port}` }, ttlMs: 60000, logger: silentLogger() })
    await gone.start()
    try {
      // Checked now rather than at the leader's next round; the page shows it at its next poll.
      expect((await http('GET', `${controllerUrl}/v1/nodes?fresh=true`)).status).to.equal(200)
      await page.getByTestId('node-reason-c9').filter({ hasText: `health port 127.0.0.1:${port} refused the connection` }).waitFor({ timeout: 15000 })
      expect(await page.getByTestId('node-c9').locator('td[data-check="reachable"]').innerText()).to.equal('fails')
      // c1 has no health listener in this test: it is probed on its API; the workers cannot be probed.
      expect(await page.getByTestId('node-c1').locator('td[data-check="probe"]').innerText()).to.equal('ok')
      expect(await page.getByTestId('node-reason-w1').innerText()).to.include('no probe port registered')
    } finally {
      await gone.stop()
    }
    expect(pageErrors, pageErrors.join('\n')).to.deep.equal([])
  })

  it('shows on a group page the consumer groups it follows to the target, per partition', async () => {
    const followed = uniqueName('g-cg')
    const app = uniqueName('dash-app')
    const source = kafkajsClients.admin({ name: 'src', bootstrapServers: [stack.source.plaintext] } as ClusterSpec, { clientId: 'ferry-dashboard-test', logger: silentLogger() })
    try {
      await source.setGroupOffsets(app, [{ topic, partition: 2, offset: 5 }])
      const created = await http('POST', `${controllerUrl}/v1/groups`, { name: followed, sourceCluster: 'src', targetCluster: 'dst', topics: [topic], rename: { prefix: 'cg.' }, consumerGroups: { names: [app] } })
      expect(created.status, created.text).to.equal(201)
      await page.goto(`${controllerUrl}/ui/#/groups/${followed}`)
      const row = page.getByTestId('translation-row').filter({ hasText: app })
      await row.waitFor({ timeout: 30000 })
      const cells = await row.locator('td').allInnerTexts()
      expect(cells.slice(0, 4)).to.deep.equal([app, `${topic} → cg.${topic}`, '2', '5'])
      expect(cells[7], 'skipped').to.equal('0')
    } finally {
      await source.disconnect()
      await http('DELETE', `${controllerUrl}/v1/groups/${followed}`)
      await page.goto(`${controllerUrl}/ui/#/`)
    }
    expect(pageErrors, pageErrors.join('\n')).to.deep.equal([])
  })

  it('asks for a token when the API requires one, and disables writes for a read-only token', async () => {
    // A second controller of the same deployment, with bearer tokens: the dashboard is open, /v1 is not.
    const secured = new FerryProcess('ui-controller-c2', ['bootstrap', '--role', 'controller', '--id', 'c2', '--port', '0', ...common()], {
      FERRY_API_TOKENS: 'ops admin ops-secret-1;viewer read view-secret-1',
    })
    procs.push(secured)
    const c2 = await waitFor('c2 registered with its URL', async () => (await listInstances(redis, createKeys(deployment))).find((i) => i.id === 'c2' && i.url), 90000)
    const context = await (browser as Browser).newContext({ viewport: { width: 1440, height: 900 } })
    const secure = await context.newPage()
    await secure.goto(`${c2.url as string}/ui/`)
    const prompt = secure.getByTestId('token-prompt')
    await prompt.waitFor()
    await prompt.locator('input[name=token]').fill('not-a-token')
    await prompt.getByRole('button', { name: 'Use token' }).click()
    await prompt.getByText('the one given was not accepted').waitFor()

    await prompt.locator('input[name=token]').fill('view-secret-1')
    await prompt.getByRole('button', { name: 'Use token' }).click()
    const row = secure.getByTestId(`group-${group}`)
    await row.and(secure.locator('[data-state=stopped]')).waitFor()
    expect(await secure.evaluate('sessionStorage.getItem("ferry.token")')).to.equal('view-secret-1')
    await row.getByTestId('start').click()
    await secure.getByTestId('read-only').waitFor()
    expect(await secure.getByTestId('action-error').innerText()).to.match(/read role/)
    expect(await row.getByTestId('start').isDisabled()).to.equal(true)
    expect(await secure.getByTestId('create-submit').isDisabled()).to.equal(true)
    expect((await http('GET', `${controllerUrl}/v1/groups/${group}`)).body.state).to.equal('stopped')

    // Forget the read token, give the admin one: writes work again.
    await secure.getByRole('button', { name: 'forget token' }).click()
    await prompt.waitFor()
    await prompt.locator('input[name=token]').fill('ops-secret-1')
    await prompt.getByRole('button', { name: 'Use token' }).click()
    await row.getByTestId('start').and(secure.locator(':enabled')).click()
    await row.and(secure.locator('[data-state=running]')).waitFor()
    expect((await http('GET', `${controllerUrl}/v1/groups/${group}`)).body.state).to.equal('running')
    await context.close()
  })
})
