/**
 * Cluster and topic-group definitions: the schemas every process validates against, and the
 * helpers that turn a zod failure into one FerryError listing every problem by field.
 *
 * @example
 *   const cluster = parseCluster(req.body)       // throws FerryError('INVALID_INPUT') naming each bad field
 *   const group = parseTopicGroup(req.body)
 */
import { z } from 'zod'
import { FerryError } from './errors.js'
import { MAX_TOPIC_PATTERN_LENGTH, topicPatternMatches, topicPatternProblem } from './topic-pattern.js'
import { DENIED_TOPIC_CONFIGS, MIRRORED_TOPIC_CONFIGS } from './topic-configs.js'

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/
const HOST_PORT = /^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/

/** A cluster, group or instance name (also what a `{name}` path parameter must be). */
/** Codecs Ferry writes (zstd it reads, but cannot write). */
export const targetCompressions = ['none', 'gzip', 'snappy', 'lz4'] as const
export type TargetCompression = (typeof targetCompressions)[number]

export const nameSchema = z
  .string({ required_error: 'is required' })
  .regex(NAME, 'must be 1-100 characters of letters, digits, ".", "_" or "-", starting with a letter or digit')

/** Kafka's longest topic name (characters). */
export const MAX_TOPIC_NAME_LENGTH = 249
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/
export const TOPIC_NAME_MESSAGE = 'is not a valid Kafka topic name (1-249 characters of letters, digits, ".", "_" or "-", not "." or "..")'

/** Whether Kafka accepts `name` as a topic name. */
export function isValidTopicName(name: string): boolean {
  return TOPIC_NAME.test(name) && name !== '.' && name !== '..'
}

/** A Kafka topic name. */
export const topicNameSchema = z.string().refine(isValidTopicName, TOPIC_NAME_MESSAGE)

/** Largest `maxBytesPerSec` accepted: 1 TiB/s, far above any link, and an exact integer in JSON and JavaScript. */
export const MAX_BYTES_PER_SEC = 2 ** 40

/**
 * The explicit rename map. Parsed by hand rather than with z.record: z.record builds a plain
 * object, where a source topic `__proto__` is silently dropped. The result has no prototype, so
 * a topic named `constructor` or `toString` is a key like any other.
 */
const renameMapSchema = z.unknown().transform((input, ctx): Record<string, string> => {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    ctx.addIssue({ code: 'custom', message: 'must be an object of source topic → target topic names' })
    return z.NEVER
  }
  const map = Object.create(null) as Record<string, string>
  for (const [source, target] of Object.entries(input)) {
    if (!isValidTopicName(source)) ctx.addIssue({ code: 'custom', path: [source], message: `source topic ${TOPIC_NAME_MESSAGE}` })
    else if (typeof target !== 'string' || !isValidTopicName(target)) ctx.addIssue({ code: 'custom', path: [source], message: TOPIC_NAME_MESSAGE })
    else map[source] = target
  }
  return map
})

const tlsSchema = z
  .object({
    /** PEM file with the CA certificates that sign the brokers' certificates. */
    caFile: z.string().min(1).optional(),
    /** PEM client certificate for mutual TLS. */
    certFile: z.string().min(1).optional(),
    /** PEM private key for mutual TLS (a secret: a path, never the key itself). */
    keyFile: z.string().min(1).optional(),
    /** Host name to verify the broker certificate against, when it differs from the address. */
    servername: z.string().min(1).optional(),
    /** Verify the broker certificate chain (default true). Disabling it is for tests only. */
    rejectUnauthorized: z.boolean().default(true),
  })
  .strict()
  .refine((tls) => (tls.certFile === undefined) === (tls.keyFile === undefined), {
    message: 'certFile and keyFile must be given together (mutual TLS needs both)',
    path: ['certFile'],
  })

const saslSchema = z
  .object({
    mechanism: z.enum(['scram-sha-512', 'scram-sha-256', 'plain']),
    username: z.string().min(1),
    /** Inline password: accepted, stored, never returned. Prefer passwordFile or passwordEnv. */
    password: z.string().min(1).optional(),
    /** File holding the password (trailing newline ignored). */
    passwordFile: z.string().min(1).optional(),
    /** Environment variable holding the password, read by the process that connects. */
    passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
  })
  .strict()
  .refine(
    (sasl) => [sasl.password, sasl.passwordFile, sasl.passwordEnv].filter((v) => v !== undefined).length === 1,
    { message: 'exactly one of password, passwordFile or passwordEnv is required', path: ['password'] },
  )

export const securityProtocols = ['PLAINTEXT', 'SSL', 'SASL_SSL', 'SASL_PLAINTEXT'] as const

export const clusterSchema = z
  .object({
    name: nameSchema,
    bootstrapServers: z
      .array(z.string().regex(HOST_PORT, 'must be host:port'), { required_error: 'is required' })
      .min(1, 'needs at least one host:port'),
    securityProtocol: z.enum(securityProtocols).default('PLAINTEXT'),
    tls: tlsSchema.optional(),
    sasl: saslSchema.optional(),
    /** Data centre the cluster lives in. */
    dc: z.string().min(1).optional(),
    /** Security zone the cluster lives in. */
    zone: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((cluster, ctx) => {
    const usesSasl = cluster.securityProtocol.startsWith('SASL_')
    if (usesSasl && cluster.sasl === undefined) {
      ctx.addIssue({ code: 'custom', path: ['sasl'], message: `is required when securityProtocol is ${cluster.securityProtocol}` })
    }
    if (!usesSasl && cluster.sasl !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['sasl'], message: `is only allowed with SASL_SSL or SASL_PLAINTEXT, not ${cluster.securityProtocol}` })
    }
    const usesTls = cluster.securityProtocol === 'SSL' || cluster.securityProtocol === 'SASL_SSL'
    if (!usesTls && cluster.tls !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['tls'], message: `is only allowed with SSL or SASL_SSL, not ${cluster.securityProtocol}` })
    }
  })

/** An inline secret as ZooKeeper holds it (common/secrets.ts seals and opens it). */
export interface SealedSecret {
  alg: 'aes-256-gcm'
  /** Id of the key in the operator's key file that sealed it. */
  keyId: string
  /** base64 of the 12-byte nonce, the ciphertext and the 16-byte GCM tag. */
  iv: string
  data: string
  tag: string
}

type ClusterInput = z.infer<typeof clusterSchema>

/**
 * A cluster as processes hold it. Once stored, an inline `sasl.password` is replaced by
 * `sasl.sealedPassword`, which the API never accepts (the schema is strict) and never shows.
 */
export type ClusterSpec = Omit<ClusterInput, 'sasl'> & { sasl?: NonNullable<ClusterInput['sasl']> & { sealedPassword?: SealedSecret } }

export const deliveryModes = ['at-least-once', 'exactly-once'] as const
export const strategies = ['balanced', 'load-aware', 'zone-aware'] as const

/** Default time between two runs of a group's continuous audit. */
export const DEFAULT_AUDIT_INTERVAL_MINUTES = 10
/** Default time after a minute's end before the continuous audit's figures of it are final. */
export const DEFAULT_AUDIT_GRACE_MINUTES = 10

/** A consumer group id: what Kafka allows (any string up to 255), less control characters. */
const consumerGroupIdSchema = z
  .string()
  .min(1)
  .max(255)
  .refine((id) => ![...id].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f), 'must not hold control characters')

/** Default time between two syncs of a group's topic configs or ACLs (controller/topic-follow.ts). */
export const DEFAULT_FOLLOW_INTERVAL_MS = 30_000

/** Group overrides of synced topic configs: only allow-listed names, string values; no prototype. */
const configOverridesSchema = z
  .unknown()
  .transform((input, ctx): Record<string, string> => {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      ctx.addIssue({ code: 'custom', message: 'must be an object of topic config name → value (a string)' })
      return z.NEVER
    }
    const map = Object.create(null) as Record<string, string>
    for (const [name, value] of Object.entries(input)) {
      const denied = DENIED_TOPIC_CONFIGS.get(name)
      if (denied !== undefined) ctx.addIssue({ code: 'custom', path: [name], message: `is never set by Ferry (${denied}); set it on the target topic yourself` })
      else if (!MIRRORED_TOPIC_CONFIGS.has(name)) ctx.addIssue({ code: 'custom', path: [name], message: `is not a synced topic config; one of ${[...MIRRORED_TOPIC_CONFIGS].sort().join(', ')}` })
      else if (typeof value !== 'string' || value.length === 0 || value.length > 1000) ctx.addIssue({ code: 'custom', path: [name], message: 'must be a non-empty string of at most 1000 characters (Kafka configs are strings: "3600000", not 3600000)' })
      else map[name] = value
    }
    return map
  })

/** A Kafka principal, `Type:name` (e.g. `User:alice`). */
const PRINCIPAL = /^[A-Za-z][A-Za-z0-9_-]{0,49}:[^\s]{1,200}$/

/** Source principal → target principal for the ACL sync; no prototype. */
const principalMapSchema = z
  .unknown()
  .transform((input, ctx): Record<string, string> => {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) {
      ctx.addIssue({ code: 'custom', message: 'must be an object of source principal → target principal ("User:alice": "User:alice-dr")' })
      return z.NEVER
    }
    const map = Object.create(null) as Record<string, string>
    for (const [source, target] of Object.entries(input)) {
      if (!PRINCIPAL.test(source)) ctx.addIssue({ code: 'custom', path: [source], message: 'source principal must be Type:name, e.g. User:alice' })
      else if (typeof target !== 'string' || !PRINCIPAL.test(target)) ctx.addIssue({ code: 'custom', path: [source], message: 'must be a principal Type:name, e.g. User:alice-dr' })
      else map[source] = target
    }
    return map
  })

/** The fields of a topic group, without the cross-field checks of {@link checkTopicGroup}. */
export const topicGroupFieldsSchema = z
  .object({
    name: nameSchema,
    sourceCluster: nameSchema,
    targetCluster: nameSchema,
    /** Explicit topic list. Exactly one of topics / topicPattern. */
    topics: z.array(topicNameSchema).min(1).optional(),
    /**
     * Regular expression (RE2 syntax, whole-name match, at most 1000 characters) that also
     * catches topics created later. Matched in linear time: no backreferences or lookaround.
     */
    topicPattern: z.string().min(1).max(MAX_TOPIC_PATTERN_LENGTH, `must be at most ${MAX_TOPIC_PATTERN_LENGTH} characters`).optional(),
    rename: z
      .object({
        /** Prepended to every source topic name on the target. */
        prefix: z.string().regex(/^[A-Za-z0-9._-]{0,200}$/, 'may only hold letters, digits, ".", "_" and "-"').optional(),
        /** Explicit source → target names; wins over prefix. */
        map: renameMapSchema.optional(),
      })
      .strict()
      .optional(),
    delivery: z.enum(deliveryModes).default('at-least-once'),
    /** Where a partition with no checkpoint starts. */
    startPosition: z.enum(['earliest', 'latest']).default('earliest'),
    /** Keep each record's source partition number (target needs at least as many partitions). */
    preservePartition: z.boolean().default(true),
    /** Optional byte-rate limit per worker for this group, bytes per second. */
    maxBytesPerSec: z.number().int().positive().max(MAX_BYTES_PER_SEC, `must be at most ${MAX_BYTES_PER_SEC} (1 TiB/s)`).optional(),
    /** Codec for the target's batches; none when unset (sources may use any codec, zstd included). */
    compression: z.enum(targetCompressions).optional(),
    strategy: z.enum(strategies).default('balanced'),
    /** Only workers in this zone may mirror the group. */
    zone: z.string().min(1).optional(),
    /** Only workers in this data centre may mirror the group. */
    dc: z.string().min(1).optional(),
    /**
     * A record the target refuses (too large, invalid, not authorised): `stop` the partition
     * there and report it (default), or write it to the dead-letter topic and go on.
     */
    onRejectedRecord: z.enum(['stop', 'dead-letter']).default('stop'),
    /**
     * Active-active: stamp every mirrored record with a `ferry.origin` header (the id of the
     * Kafka cluster it was first written to, appended after its own headers; kept as it is on a
     * record that has one) and never mirror a record whose origin is the target cluster
     * (worker/provenance.ts). Off when unset: records are mirrored byte for byte, headers included.
     */
    provenance: z.boolean().optional(),
    /** Dead-letter topic on the target; default `_ferry.<group>.dead-letter`. */
    deadLetterTopic: topicNameSchema.optional(),
    /**
     * The continuous audit (controller/continuous-audit.ts), off unless given: every
     * `intervalMinutes` (default 10; a fraction is allowed, at least 0.05 = 3 s) the leader reads
     * what both sides appended since its previous run and counts missing and duplicated records per
     * minute of record timestamp; a minute is final `graceMinutes` (default 10) after its end.
     */
    audit: z
      .object({
        intervalMinutes: z.number().min(0.05, 'must be at least 0.05 (3 s)').max(1440, 'must be at most 1440 (a day)').default(DEFAULT_AUDIT_INTERVAL_MINUTES),
        graceMinutes: z.number().min(0, 'must be 0 or more').max(1440, 'must be at most 1440 (a day)').default(DEFAULT_AUDIT_GRACE_MINUTES),
      })
      .strict()
      .optional(),
    /**
     * Consumer groups whose offsets follow the data to the target (controller/consumer-offsets.ts):
     * every `intervalSeconds` (default 5) the leader translates their committed source offsets
     * and commits them on the target while the group has no members there. Names and/or an RE2
     * pattern (whole-name match) of group ids.
     */
    consumerGroups: z
      .object({
        names: z.array(consumerGroupIdSchema).min(1).max(1000).optional(),
        pattern: z.string().min(1).max(MAX_TOPIC_PATTERN_LENGTH, `must be at most ${MAX_TOPIC_PATTERN_LENGTH} characters`).optional(),
        intervalSeconds: z.number().min(1, 'must be at least 1').max(3600, 'must be at most 3600').default(5),
      })
      .strict()
      .optional(),
    /**
     * Fail back: this group mirrors back what an earlier group (named here) mirrored the other
     * way, so consumer groups can return. Their offsets are translated through both: a record that
     * came from this group's target goes back to its original offset there (the earlier group's
     * offset syncs, inverted); one written on this group's source since is found by this group's
     * own syncs. Needs `provenance` on both groups (records that came from the target are not
     * copied back); checked when the group is created.
     */
    failbackOf: nameSchema.optional(),
    // --- Topic configs and ACLs follow (controller/topic-follow.ts, docs/disaster-recovery.md) ---
    /**
     * The continuous sync of the mirrored topics' configs (on unless `sync: false`): every
     * `intervalMs` (default 30000) the leader sets on each target topic the source's allow-listed
     * configs (common/topic-configs.ts), `overrides` winning; other target configs are kept.
     */
    topicConfigs: z
      .object({
        sync: z.boolean().default(true),
        intervalMs: z.number().int().min(1000, 'must be at least 1000 (1 s)').max(3_600_000, 'must be at most 3600000 (an hour)').default(DEFAULT_FOLLOW_INTERVAL_MS),
        /** Target-side values of allow-listed configs, for every target topic of the group; the sync never overwrites them. */
        overrides: configOverridesSchema.optional(),
      })
      .strict()
      .optional(),
    /**
     * ACLs follow (off unless `sync: true`): the source topics' literal ALLOW READ and DESCRIBE
     * ACLs are created on their target topics every `intervalMs` (default 30000), each principal
     * mapped by `principals` (unmapped ones kept as they are). WRITE never; nothing is deleted.
     */
    acls: z
      .object({
        sync: z.boolean().default(false),
        intervalMs: z.number().int().min(1000, 'must be at least 1000 (1 s)').max(3_600_000, 'must be at most 3600000 (an hour)').default(DEFAULT_FOLLOW_INTERVAL_MS),
        principals: principalMapSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict()

/** The checks across a topic group's fields (one of topics or topicPattern, rename lengths, zone-aware, self-mirroring). */
export function checkTopicGroup(group: z.output<typeof topicGroupFieldsSchema>, ctx: z.RefinementCtx): void {
  if ((group.topics === undefined) === (group.topicPattern === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['topics'], message: 'exactly one of topics or topicPattern is required' })
  }
  if (group.topicPattern !== undefined && group.topicPattern.length <= MAX_TOPIC_PATTERN_LENGTH) {
    const problem = topicPatternProblem(group.topicPattern)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['topicPattern'], message: problem })
  }
  const prefix = group.rename?.prefix ?? ''
  if (prefix !== '') {
    // Listed topics without a map entry get the prefix: the result must still be a topic name.
    for (const [index, topic] of (group.topics ?? []).entries()) {
      if (group.rename?.map !== undefined && Object.hasOwn(group.rename.map, topic)) continue
      if (prefix.length + topic.length > MAX_TOPIC_NAME_LENGTH) {
        ctx.addIssue({ code: 'custom', path: ['topics', index], message: `with rename.prefix "${prefix}" makes a target topic of ${prefix.length + topic.length} characters; Kafka allows at most ${MAX_TOPIC_NAME_LENGTH}` })
      }
    }
  }
  if (group.strategy === 'zone-aware' && group.zone === undefined && group.dc === undefined) {
    ctx.addIssue({ code: 'custom', path: ['strategy'], message: 'zone-aware needs the group to name a zone or a dc' })
  }
  if (group.consumerGroups !== undefined) {
    if (group.consumerGroups.names === undefined && group.consumerGroups.pattern === undefined) ctx.addIssue({ code: 'custom', path: ['consumerGroups'], message: 'names or pattern is required' })
    const problem = group.consumerGroups.pattern === undefined ? undefined : topicPatternProblem(group.consumerGroups.pattern)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['consumerGroups', 'pattern'], message: problem })
    if (!group.preservePartition) ctx.addIssue({ code: 'custom', path: ['consumerGroups'], message: 'needs preservePartition: consumer offsets are translated partition by partition' })
  }
  if (group.failbackOf !== undefined && group.provenance !== true) {
    ctx.addIssue({ code: 'custom', path: ['failbackOf'], message: 'needs provenance: true (records that came from the target must not be copied back)' })
  }
  if (group.sourceCluster === group.targetCluster && !group.rename?.prefix && !group.rename?.map) {
    ctx.addIssue({ code: 'custom', path: ['targetCluster'], message: 'mirroring a cluster onto itself needs a rename (prefix or map), or it would copy topics onto themselves' })
  }
}

export const topicGroupSchema = topicGroupFieldsSchema.superRefine(checkTopicGroup)

export type TopicGroupSpec = z.infer<typeof topicGroupSchema>

/** One problem in an input, by dotted field path. */
export interface FieldProblem {
  field: string
  message: string
}

export function zodProblems(error: z.ZodError): FieldProblem[] {
  return error.issues.flatMap((issue) =>
    // An unknown field is named itself, not its parent object.
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: [...issue.path, key].join('.'), message: 'is not a known field' }))
      : [{ field: issue.path.length > 0 ? issue.path.join('.') : '(body)', message: issue.message }],
  )
}

/** Parse `input` with `schema`, or throw INVALID_INPUT listing every problem by field. */
export function parseOrThrow<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, input: unknown, what: string): T {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const problems = zodProblems(result.error)
  const summary = problems.map((p) => `${p.field}: ${p.message}`).join('; ')
  throw new FerryError('INVALID_INPUT', `invalid ${what}: ${summary}`, { details: problems })
}

export function parseCluster(input: unknown): ClusterSpec {
  return parseOrThrow(clusterSchema, input, 'cluster')
}

export function parseTopicGroup(input: unknown): TopicGroupSpec {
  return parseOrThrow(topicGroupSchema, input, 'topic group')
}

/** Target topic name for a source topic under a group's rename rule. */
export function targetTopicName(group: Pick<TopicGroupSpec, 'rename'>, sourceTopic: string): string {
  // Own keys only: `map[topic]` would find Object.prototype's `constructor` or `toString`.
  const map = group.rename?.map
  if (map !== undefined && Object.hasOwn(map, sourceTopic)) {
    const mapped = map[sourceTopic]
    if (typeof mapped === 'string') return mapped
  }
  return `${group.rename?.prefix ?? ''}${sourceTopic}`
}

/**
 * Why a source topic cannot be mirrored under a group's rename rule (the target name would be
 * longer than Kafka allows), or undefined.
 */
export function targetTopicProblem(group: Pick<TopicGroupSpec, 'rename'>, sourceTopic: string): string | undefined {
  const target = targetTopicName(group, sourceTopic)
  return target.length > MAX_TOPIC_NAME_LENGTH ? `target topic for "${sourceTopic}" would be ${target.length} characters long; Kafka allows at most ${MAX_TOPIC_NAME_LENGTH}` : undefined
}

export function deadLetterTopicName(group: Pick<TopicGroupSpec, 'name' | 'deadLetterTopic'>): string {
  return group.deadLetterTopic ?? `_ferry.${group.name}.dead-letter`
}

/** Whether a source topic belongs to a group (explicit list, or whole-name regex match). */
export function groupIncludesTopic(group: Pick<TopicGroupSpec, 'topics' | 'topicPattern'>, topic: string): boolean {
  if (group.topics !== undefined) return group.topics.includes(topic)
  if (group.topicPattern === undefined) return false
  // RE2: linear in the topic's length whatever the pattern (see common/topic-pattern.ts).
  return topicPatternMatches(group.topicPattern, topic)
}

/** A cluster as an API may show it: secret values replaced by whether they are set. */
/** A cluster as the API shows it: an inline password as `(set, hidden)`, no sealed password. */
export type RedactedCluster = Omit<ClusterSpec, 'sasl'> & { sasl?: Omit<NonNullable<ClusterSpec['sasl']>, 'password' | 'sealedPassword'> & { password?: string } }

export function redactCluster(cluster: ClusterSpec): RedactedCluster {
  const { sasl, ...rest } = cluster
  if (sasl === undefined) return { ...rest }
  const { password, sealedPassword, ...saslRest } = sasl
  return { ...rest, sasl: { ...saslRest, ...(password === undefined && sealedPassword === undefined ? {} : { password: '(set, hidden)' }) } }
}
