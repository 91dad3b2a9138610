/**
 * The rendered supervisord entry's command runs for real under /bin/sh (with supervisord's
 * %(...)s expansions done as supervisord does them), against a stand-in ferry that prints its
 * arguments and the variables it was given: the three env files are sourced in order, later
 * ones winning, and the secret references reach the process as references.
 */
import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { parseCluster, parseTopicGroup } from '../../../common/config.js'
import { render } from '../../../configurator/index.js'

const run = promisify(execFile)

describe('configurator supervisord entry', () => {
  let root: string

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'ferry-supervisor-'))
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('starts ferry bootstrap with the env files sourced in order and one id per process', async () => {
    const fakeFerry = join(root, 'ferry')
    await writeFile(fakeFerry, '#!/bin/sh\necho "args=$*"\necho "zone=$FERRY_ZONE grace=$FERRY_GRACE_PERIOD_MS zk=$FERRY_ZOOKEEPER secrets=$FERRY_SECRET_FILES"\n')
    await chmod(fakeFerry, 0o755)
    const files = render({
      group: parseTopicGroup({ name: 'orders', sourceCluster: 'a', targetCluster: 'b', topics: ['orders'], zone: 'dmz' }),
      source: parseCluster({ name: 'a', bootstrapServers: ['a:9093'], securityProtocol: 'SASL_SSL', sasl: { mechanism: 'plain', username: 'u', passwordEnv: 'A_PW' } }),
      target: parseCluster({ name: 'b', bootstrapServers: ['b:9092'] }),
      deployment: 'test',
      workers: 3,
      installDir: root,
      ferryBin: fakeFerry,
    })
    for (const file of files) {
      await mkdir(join(root, file.path, '..'), { recursive: true })
      await writeFile(join(root, file.path), file.content)
    }
    await writeFile(join(root, 'ferry.env'), 'FERRY_ZOOKEEPER=zk:2181\nFERRY_ZONE=shared-zone\n')
    await writeFile(join(root, 'orders.env'), 'FERRY_ZONE=group-zone\n')

    const entry = files.find((f) => f.path === 'supervisor/ferry-worker-orders.conf')?.content ?? ''
    const settings = new Map(entry.split('\n').filter((l) => /^[a-z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
    expect(entry.split('\n').filter((l) => l.startsWith('['))).to.deep.equal(['[program:ferry-worker-orders]'])
    expect(settings.get('numprocs')).to.equal('3')
    expect(settings.get('stopsignal')).to.equal('TERM')
    expect(Number(settings.get('stopwaitsecs'))).to.be.above(30)
    const command = (settings.get('command') ?? '').replace('%(host_node_name)s', 'host-a').replace('%(process_num)d', '2')
    const match = /^\/bin\/sh -c '(.*)'$/.exec(command)
    expect(match, command).to.not.equal(null)
    const { stdout } = await run('/bin/sh', ['-c', match?.[1] ?? ''], { env: { PATH: process.env.PATH } })
    expect(stdout).to.include('args=bootstrap --role worker --deployment test --id host-a-orders-2')
    expect(stdout).to.include(`zone=group-zone grace=30000 zk=zk:2181 secrets=A_PW=${root}/secrets/A_PW`)
  })
})
