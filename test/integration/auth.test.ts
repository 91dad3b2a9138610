/**
 * Access control on a real controller (real ZooKeeper and Redis): tokens from a file and from
 * FERRY_API_TOKENS, 401 without or with an unknown token, 403 for a read token on a write,
 * open probes, one `api.change` line per change naming who, and no token anywhere in logs,
 * responses or metrics. Then an open controller (no tokens) warns once, and an HTTPS listener.
 */
import { expect } from 'chai'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import type { LocalStack } from '../../deploy/local-stack.js'
import { allFerryLogs, sharedStack, uniqueName, waitFor, type FerryProcess } from './harness.js'
import { request, startController } from './api-client.js'

describe('REST access control (real controller)', function () {
  this.timeout(180000)
  let stack: LocalStack
  const deployment = uniqueName('auth')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-auth-'))
  const adminToken = `adm-${randomBytes(16).toString('hex')}`
  const readToken = `rd-${randomBytes(16).toString('hex')}`
  const envToken = `env-${randomBytes(16).toString('hex')}`
  const tokens = [adminToken, readToken, envToken]
  const procs: FerryProcess[] = []
  let url = ''
  let controller: FerryProcess
  const common = (): string[] => ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment]

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    const file = path.join(dir, 'tokens')
    writeFileSync(file, `# Ferry API tokens\nops-alice admin ${adminToken}\n\ndash-viewer read ${readToken}\n`, { mode: 0o600 })
    const started = await startController('auth-controller', [...common(), '--id', 'auth-c1', '--api-tokens-file', file], { FERRY_API_TOKENS: `ci-bot admin ${envToken}` })
    controller = started.proc
    url = started.url
    procs.push(controller)
  })

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()))
  })

  it('leaves /healthz and /readyz open', async () => {
    expect((await request('GET', `${url}/healthz`)).status).to.equal(200)
    expect([200, 503]).to.include((await request('GET', `${url}/readyz`)).status)
  })

  it('answers 401 with WWW-Authenticate without a token, with an unknown one, or with another scheme', async () => {
    for (const [what, headers] of [
      ['no token', {}],
      ['unknown token', { authorization: `Bearer ${readToken}x` }],
      ['basic auth', { authorization: `Basic ${Buffer.from(`a:${adminToken}`).toString('base64')}` }],
      ['empty bearer', { authorization: 'Bearer ' }],
    ] as const) {
      for (const [method, p] of [['GET', '/v1/groups'], ['GET', '/metrics'], ['GET', '/v1/openapi.json'], ['POST', '/v1/clusters'], ['GET', '/topics'], ['GET', '/METRICS/']] as const) {
        const res = await request(method, `${url}${p}`, { headers })
        expect(res.status, `${what} ${method} ${p}`).to.equal(401)
        expect(res.body.error.code).to.equal('UNAUTHORIZED')
        expect(res.body.error.details[0].field).to.equal('Authorization')
        expect(res.headers.get('www-authenticate')).to.match(/^Bearer/)
      }
    }
  })

  it('lets a read token read, and answers 403 to its writes', async () => {
    for (const p of ['/v1/groups', '/v1/clusters', '/v1/workers', '/v1/assignments', '/v1/openapi.json', '/metrics', '/topics']) {
      expect((await request('GET', `${url}${p}`, { token: readToken })).status, p).to.equal(200)
    }
    const writes: Array<[string, string, unknown]> = [
      ['POST', '/v1/clusters', { name: 'x', bootstrapServers: ['127.0.0.1:1'] }],
      ['DELETE', '/v1/clusters/x', undefined],
      ['POST', '/v1/groups', { name: 'g', sourceCluster: 'a', targetCluster: 'b', topics: ['t'] }],
      ['POST', '/v1/groups/g/start', undefined],
      ['POST', '/v1/groups/g/stop', undefined],
      ['DELETE', '/v1/groups/g', undefined],
      ['POST', '/v1/rebalance?dryRun=true', undefined],
      ['POST', '/topics', { topic: 't' }],
      ['DELETE', '/topics/t', undefined],
      ['PUT', '/topics', { topic: 't' }],
    ]
    for (const [method, p, json] of writes) {
      const res = await request(method, `${url}${p}`, { token: readToken, ...(json === undefined ? {} : { json }) })
      expect(res.status, `${method} ${p}`).to.equal(403)
      expect(res.body.error.code).to.equal('FORBIDDEN')
      expect(res.body.error.message).to.contain('dash-viewer')
    }
    const clusters = await request('GET', `${url}/v1/clusters`, { token: readToken })
    expect(clusters.body.clusters.map((c: { name: string }) => c.name)).not.to.include('x')
  })

  it('lets admin tokens (file and FERRY_API_TOKENS) change things, with one api.change line each naming who', async () => {
    const cluster = uniqueName('src')
    const target = uniqueName('dst')
    const group = uniqueName('g')
    const admin = { token: adminToken }
    expect((await request('POST', `${url}/v1/clusters`, { ...admin, json: { name: cluster, bootstrapServers: [stack.source.plaintext] } })).status).to.equal(201)
    expect((await request('POST', `${url}/v1/clusters`, { token: envToken, json: { name: target, bootstrapServers: [stack.target.plaintext] } })).status).to.equal(201)
    expect((await request('POST', `${url}/v1/groups`, { ...admin, json: { name: group, sourceCluster: cluster, targetCluster: target, topics: [uniqueName('t')], start: false } })).status).to.equal(201)
    expect((await request('POST', `${url}/v1/groups/${group}/start`, admin)).status).to.equal(200)
    expect((await request('POST', `${url}/v1/groups/${group}/stop`, { token: envToken })).status).to.equal(200)
    expect((await request('POST', `${url}/v1/rebalance?dryRun=true`, admin)).status).to.equal(200)
    expect((await request('DELETE', `${url}/v1/groups/${group}`, admin)).status).to.equal(204)
    // A refused change is not a change.
    expect((await request('DELETE', `${url}/v1/groups/${group}`, admin)).status).to.equal(404)

    await waitFor('the api.change line of the delete', () => controller.log().includes(`"path":"/v1/groups/${group}","group":"${group}","status":204`), 10000)
    const changes = controller
      .log()
      .split('\n')
      .filter((l) => l.includes('"api.change"'))
      .map((l) => JSON.parse(l) as { who: string; role: string; method: string; path: string; status: number; group?: string; cluster?: string; time: string })
    const mine = changes.filter((c) => c.group === group || c.cluster === cluster || c.cluster === target)
    expect(mine.map((c) => `${c.who} ${c.method} ${c.path} ${c.status}`)).to.deep.equal([
      `ops-alice POST /v1/clusters 201`,
      `ci-bot POST /v1/clusters 201`,
      `ops-alice POST /v1/groups 201`,
      `ops-alice POST /v1/groups/${group}/start 200`,
      `ci-bot POST /v1/groups/${group}/stop 200`,
      `ops-alice DELETE /v1/groups/${group} 204`,
    ])
    expect(mine.every((c) => typeof c.time === 'string' && c.role === 'admin')).to.equal(true)
    expect(changes.some((c) => c.path === '/v1/rebalance' && c.who === 'ops-alice')).to.equal(true)
  })

  it('never shows a token in logs, responses or metrics', async () => {
    const metrics = await request('GET', `${url}/metrics`, { token: adminToken })
    const doc = await request('GET', `${url}/v1/openapi.json`, { token: adminToken })
    const logs = allFerryLogs()
    expect(logs).to.contain('api.denied')
    for (const token of tokens) {
      expect(logs.includes(token), 'token in a log').to.equal(false)
      expect(metrics.text.includes(token), 'token in /metrics').to.equal(false)
      expect(doc.text.includes(token), 'token in the OpenAPI document').to.equal(false)
    }
    const startLines = controller.log().split('\n').filter((l) => l.includes('"api.auth_'))
    expect(startLines).to.have.length(1)
    expect(startLines[0]).to.contain('"api.auth_enabled"').and.contain('"tokens":3')
  })

  it('refuses to start with a malformed tokens file, naming the line and not the token', async () => {
    const file = path.join(dir, 'bad-tokens')
    const secret = `sec-${randomBytes(12).toString('hex')}`
    writeFileSync(file, `ok-user admin ${randomBytes(12).toString('hex')}\nbad-user ${secret} admin\n`)
    const { FerryProcess } = await import('./harness.js')
    const bad = new FerryProcess('auth-bad-controller', ['controller', '--port', '0', ...common(), '--api-tokens-file', file])
    procs.push(bad)
    const code = await bad.exited
    expect(code).to.not.equal(0)
    expect(bad.log()).to.contain(`${file} entry 2`).and.contain('role must be')
    expect(bad.log()).not.to.contain(secret)
  })

  it('is open, with one warning at start, when no token is configured', async () => {
    const open = await startController('open-controller', [...common(), '--id', 'open-c1'], { FERRY_API_TOKENS: '', FERRY_API_TOKENS_FILE: '' })
    procs.push(open.proc)
    expect((await request('GET', `${open.url}/v1/groups`)).status).to.equal(200)
    expect((await request('POST', `${open.url}/v1/rebalance?dryRun=true`)).status).to.equal(200)
    const warnings = open.proc.log().split('\n').filter((l) => l.includes('"api.auth_disabled"'))
    expect(warnings).to.have.length(1)
    expect(JSON.parse(warnings[0] as string)).to.include({ level: 40 })
    // pino writes asynchronously: wait for the line rather than reading the log once.
    const change = await waitFor('the anonymous api.change line', () => open.proc.log().split('\n').find((l) => l.includes('"api.change"')), 10000)
    expect(change, 'an anonymous change is audited too').to.contain('"who":"anonymous"').and.contain('"path":"/v1/rebalance"')
  })

  it('serves HTTPS with --api-tls-cert and --api-tls-key', async () => {
    const cert = path.join(dir, 'api.crt')
    const key = path.join(dir, 'api.key')
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
    const tls = await startController('tls-controller', [...common(), '--id', 'tls-c1', '--api-tls-cert', cert, '--api-tls-key', key], { FERRY_API_TOKENS: `tls-admin admin ${adminToken}` })
    procs.push(tls.proc)
    expect(tls.url).to.match(/^https:\/\//)
    const get = (p: string, token?: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = https.get(`${tls.url}${p}`, { ca: readFileSync(cert), headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (res) => {
          let body = ''
          res.on('data', (chunk: Buffer) => (body += chunk.toString()))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        })
        req.on('error', reject)
      })
    expect((await get('/healthz')).status).to.equal(200)
    expect((await get('/v1/groups')).status).to.equal(401)
    const groups = await get('/v1/groups', adminToken)
    expect(groups.status).to.equal(200)
    expect(JSON.parse(groups.body)).to.have.property('groups')
    // Plain HTTP on the TLS port is not served.
    const plain = await fetch(tls.url.replace('https:', 'http:') + '/healthz').then((r) => r.status, () => 'refused')
    expect(plain).to.not.equal(200)
  })
})
