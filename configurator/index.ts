/**
 * The configurator: renders what an operator deploys for a topic group (Kafka client
 * properties, the group's JSON, a systemd worker unit, start/stop scripts) and writes it.
 *
 * @example
 *   const files = render({ group, source, target, deployment: 'prod-eu', workers: 3 })
 *   await writeRendered(files, '/srv/ferry-config/orders', { force: true })
 *   // or from a shell:
 *   //   ferry render --group orders.json --source eu.json --target us.json --deployment prod-eu --out ./out
 *   process.exitCode = await runConfiguratorCli(process.argv.slice(2))
 *   // every group of a deployment, diffed against the tree on disk, only changes written:
 *   const plan = await planChanges(renderAll(parseDefinitions(yamlText, 'defs.yaml'), {}), '/etc/ferry')
 *   await applyPlan(plan, '/etc/ferry')
 */
export { render, stableJson, compressionTypes, RENDER_DEFAULTS } from './render.js'
export type { RenderInput, RenderedFile, CompressionType } from './render.js'
export { applyPlan, fetchDefinitions, formatPlan, parseDefinitions, planChanges, renderAll, validateDefinitions, MANIFEST } from './configure.js'
export type { ChangeKind, Definitions, FileChange, Plan, RenderOptions } from './configure.js'
export { renderEnvFile, renderSupervisorEntry, renderTmpfiles } from './host-files.js'
export { writeRendered } from './write.js'
export type { WriteRenderedOptions } from './write.js'
export { runConfiguratorCli, RENDER_USAGE } from './cli.js'
export type { CliIo } from './cli.js'
export { escapeProperty, formatProperties } from './properties.js'
export type { PropertyPart } from './properties.js'
export { clientSecurity, inlinePasswordEnv } from './client-security.js'
export type { ClientSecurity, ClusterRole, RequiredEnv } from './client-security.js'
export { checkSecretLocations, workerSecretSettings } from './worker-secrets.js'
export type { WorkerSecretSettings } from './worker-secrets.js'
