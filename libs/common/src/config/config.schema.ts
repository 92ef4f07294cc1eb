import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import {
  DEFAULT_BLOCKED_TYPES,
  invalidTypeEntry,
  parseTypeList,
  type TypePolicyConfig,
} from '../content/type-policy.js';
import type { ObjectStoreConfig } from '../storage/index.js';

const MiB = 1024 * 1024;

/** The development-only session secret; production refuses to start with it. */
export const DEV_SESSION_SECRET = 'tess-dev-session-secret-change-me-0123456789';

/**
 * A production SESSION_SECRET needs this many distinct characters: length alone accepts `aaaa…`.
 * `openssl rand -base64 48` has about 40 distinct characters out of 64; 16 only rejects the obvious.
 */
export const MIN_SECRET_DISTINCT_CHARS = 16;

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/** Sizes accept plain bytes or a unit: `500MiB`, `5 MiB`, `1GiB`, `64KiB`. */
const size = z
  .string()
  .trim()
  .regex(/^\d+\s*(B|KiB|MiB|GiB)?$/i, 'must be a byte count such as 524288000 or 500MiB')
  .transform((v) => {
    const m = /^(\d+)\s*(B|KiB|MiB|GiB)?$/i.exec(v)!;
    const unit = (m[2] ?? 'B').toLowerCase();
    const mult = unit === 'gib' ? 1024 * MiB : unit === 'mib' ? MiB : unit === 'kib' ? 1024 : 1;
    return Number(m[1]) * mult;
  })
  .pipe(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER));

/** Durations in seconds, or with a unit: `30m`, `12h`, `45s`, `7d`. Result in milliseconds. */
export const durationSchema = z
  .string()
  .trim()
  .regex(/^\d+\s*(ms|s|m|h|d)?$/, 'must be a duration such as 30m, 12h or 900 (seconds)')
  .transform((v) => {
    const m = /^(\d+)\s*(ms|s|m|h|d)?$/.exec(v)!;
    const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's']!;
    return Number(m[1]) * mult;
  })
  .pipe(z.number().int().min(1, 'must be longer than 0'));

const duration = durationSchema;

const url = (protocols: string[]) =>
  z
    .string()
    .trim()
    .refine(
      (v) => {
        try {
          return protocols.includes(new URL(v).protocol);
        } catch {
          return false;
        }
      },
      `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
    );

/**
 * A comma-separated list of MIME patterns and `.ext` names (ALLOWED_TYPES, BLOCKED_TYPES); `none` is the
 * empty list (an empty variable counts as unset, which means the default).
 */
const typeList = z
  .string()
  .transform((v) => (v.trim().toLowerCase() === 'none' ? [] : parseTypeList(v)))
  .superRefine((entries, ctx) => {
    for (const entry of entries) {
      const problem = invalidTypeEntry(entry);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }
  });

/** Where clamd listens: `tcp://host:port` or `unix:/absolute/path/to/clamd.ctl`. */
export type ClamdAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseClamdUrl(raw: string): ClamdAddress | null {
  const unix = /^unix:(\/\/)?(\/.+)$/.exec(raw);
  if (unix) return { kind: 'unix', path: unix[2]! };
  const tcp = /^tcp:\/\/(\[[0-9a-f:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/i.exec(raw);
  if (!tcp) return null;
  const port = Number(tcp[2]);
  return port >= 1 && port <= 65535 ? { kind: 'tcp', host: tcp[1]!.replace(/^\[|\]$/g, ''), port } : null;
}

/**
 * The environment TESS reads, validated once at startup. Every name is documented in `.env.example`.
 * Values are strings (as in the environment) and are coerced here.
 */
export const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
    LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
    HOST: z.string().default('127.0.0.1'),
    PORT: int(0, 65535).default(3000),
    PUBLIC_URL: url(['http:', 'https:']).optional(),
    ALLOWED_ORIGINS: z.string().optional(),
    TRUST_PROXY: z.string().default('loopback'),
    HTTP_IDLE_TIMEOUT: duration.default(60_000),
    DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/tess'),
    DATABASE_POOL_SIZE: int(1, 200).default(10),
    MIGRATE_ON_START: bool.default(true),
    REDIS_URL: url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
    REDIS_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,40}$/, 'must be 1-40 letters, digits, _ or -')
      .default('tess'),
    SESSION_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_SESSION_SECRET),
    SESSION_IDLE_TIMEOUT: duration.default(30 * 60_000),
    SESSION_ABSOLUTE_TIMEOUT: duration.default(12 * 3_600_000),
    COOKIE_SECURE: bool.optional(),
    ARGON2_MEMORY_KIB: int(19_456, 4_194_304).default(19_456),
    ARGON2_TIME_COST: int(2, 100).default(2),
    ARGON2_PARALLELISM: int(1, 16).default(1),
    LOGIN_MAX_FAILURES_PER_PAIR: int(1).default(5),
    LOGIN_MAX_FAILURES_PER_IP: int(1).default(50),
    LOGIN_MAX_FAILURES_PER_ACCOUNT: int(1).default(100),
    LOGIN_ACCOUNT_MAX_DELAY: duration.default(60_000),
    LOGIN_THROTTLE_WINDOW: duration.default(15 * 60_000),
    REGISTRATION: z.enum(['open', 'invite', 'closed']).default('open'),
    INVITE_EXPIRY: duration.default(7 * 86_400_000),
    ADMIN_USERNAMES: z
      .string()
      .transform((v) =>
        v
          .split(',')
          .map((name) => name.trim())
          .filter(Boolean),
      )
      .refine((names) => names.every((name) => /^[A-Za-z0-9._-]{3,80}$/.test(name)), {
        message: 'must be a comma-separated list of usernames',
      })
      .optional(),
    ADMIN_MFA_REQUIRED: bool.optional(),
    REGISTER_MAX_PER_IP: int(1).default(10),
    REGISTER_THROTTLE_WINDOW: duration.default(60 * 60_000),
    API_TOKEN_MAX_LIFETIME: duration.optional(),
    MFA_REQUIRED: bool.default(false),
    SHARE_MAX_EXPIRY: duration.default(30 * 86_400_000),
    SHARE_MAX_FAILURES_PER_LINK: int(1).default(10),
    SHARE_MAX_FAILURES_PER_IP: int(1).default(30),
    SHARE_THROTTLE_WINDOW: duration.default(15 * 60_000),
    SMTP_URL: url(['smtp:', 'smtps:']).optional(),
    MAIL_FROM: z.string().trim().min(3).max(320).optional(),
    PASSWORD_RESET_MAX_PER_ADDRESS: int(1).default(3),
    PASSWORD_RESET_MAX_PER_IP: int(1).default(10),
    PASSWORD_RESET_THROTTLE_WINDOW: duration.default(60 * 60_000),
    DATA_DIR: z.string().min(1).default('.data'),
    TEMP_DIR: z.string().min(1).optional(),
    TEMP_MAX_AGE: duration.default(24 * 3_600_000),
    MAX_FILE_SIZE: size.default(500 * MiB),
    MAX_FILES_PER_REQUEST: int(1, 1000).default(20),
    TUS_UPLOAD_EXPIRY: duration.default(24 * 3_600_000),
    TUS_CHUNK_SIZE: size
      .pipe(
        z
          .number()
          .min(256 * 1024, 'must be at least 256KiB')
          .max(512 * MiB, 'must be at most 512MiB'),
      )
      .default(8 * MiB),
    QUOTA_BYTES: size.default(0),
    QUOTA_FILES: int(0).default(0),
    STORAGE_DRIVER: z.enum(['local', 's3']).default('local'),
    S3_BUCKET: z.string().min(3).optional(),
    S3_REGION: z.string().default('us-east-1'),
    S3_ENDPOINT: url(['http:', 'https:']).optional(),
    S3_FORCE_PATH_STYLE: bool.default(false),
    S3_PART_SIZE: size
      .pipe(z.number().min(5 * MiB, 'must be at least 5MiB (the S3 minimum)'))
      // S3ObjectStore's own default (S3_DEFAULT_PART_SIZE), not imported: config must not load the AWS SDK.
      .default(8 * MiB),
    S3_QUEUE_SIZE: int(1, 64).default(4),
    S3_ACCESS_KEY_ID: z.string().optional(),
    S3_SECRET_ACCESS_KEY: z.string().optional(),
    KEY_PROVIDER: z.enum(['local', 'aws-secrets-manager']).default('local'),
    KEY_MODE: z.enum(['envelope', 'per-file-secret']).default('envelope'),
    MASTER_KEY_FILE: z.string().optional(),
    SECRETS_MANAGER_ENDPOINT: url(['http:', 'https:']).optional(),
    SECRETS_MANAGER_REGION: z.string().optional(),
    MASTER_KEY_SECRET_ID: z.string().default('tess/master-key'),
    SECRET_PREFIX: z.string().default('tess'),
    WORKER_CONCURRENCY: int(1, 64).default(2),
    PIPELINE_MIN_BYTES: size.default(8 * MiB),
    PIPELINE_CONCURRENCY: int(1, 64).default(1),
    PIPELINE_IDLE: duration.default(5_000),
    WORKER_HEALTH_PORT: int(0, 65535).default(3001),
    METRICS_TOKEN: z
      .string()
      .min(16, 'must be at least 16 characters (e.g. `openssl rand -hex 32`)')
      .optional(),
    METRICS_PORT: int(0, 65535).optional(),
    WORKER_SHUTDOWN_TIMEOUT: duration.default(60_000),
    WORKER_LOCK_DURATION: duration.default(30_000),
    JOB_ATTEMPTS: int(1, 100).default(5),
    RECONCILE_INTERVAL: duration.default(60_000),
    RECONCILE_GRACE: duration.default(2 * 60_000),
    AUDIT_ANCHOR_INTERVAL: duration.default(3_600_000),
    VERSIONS_KEEP: int(1, 10_000).default(10),
    VERSIONS_MAX_AGE: duration.optional(),
    VERSIONS_PRUNE_INTERVAL: duration.default(3_600_000),
    ALLOWED_TYPES: typeList.optional(),
    BLOCKED_TYPES: typeList.optional(),
    BLOCK_ACTIVE_CONTENT: bool.default(false),
    TYPE_MISMATCH: z.enum(['reject', 'flag', 'allow']).default('flag'),
    SCAN_MODE: z.enum(['off', 'required']).default('off'),
    CLAMD_URL: z
      .string()
      .trim()
      .refine((v) => parseClamdUrl(v) !== null, 'must be tcp://host:port or unix:/path/to/clamd.socket')
      .default('tcp://127.0.0.1:3310'),
    SCAN_TIMEOUT: duration.default(60_000),
  })
  .superRefine((env, ctx) => {
    if (env.STORAGE_DRIVER === 's3' && !env.S3_BUCKET) {
      ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'is required when STORAGE_DRIVER=s3' });
    }
    if (env.KEY_MODE === 'per-file-secret' && env.KEY_PROVIDER !== 'aws-secrets-manager') {
      ctx.addIssue({
        code: 'custom',
        path: ['KEY_MODE'],
        message: 'per-file-secret needs KEY_PROVIDER=aws-secrets-manager (each file key is its own secret)',
      });
    }
    if (env.NODE_ENV === 'production') {
      if (env.SMTP_URL && !env.PUBLIC_URL) {
        ctx.addIssue({
          code: 'custom',
          path: ['PUBLIC_URL'],
          message: 'is required in production when SMTP_URL is set (password reset links are built from it)',
        });
      }
      if (env.SESSION_SECRET === DEV_SESSION_SECRET) {
        ctx.addIssue({
          code: 'custom',
          path: ['SESSION_SECRET'],
          message: 'must be set to a random value in production (e.g. `openssl rand -base64 48`)',
        });
      }
      const distinct = new Set(env.SESSION_SECRET).size;
      if (env.SESSION_SECRET !== DEV_SESSION_SECRET && distinct < MIN_SECRET_DISTINCT_CHARS) {
        ctx.addIssue({
          code: 'custom',
          path: ['SESSION_SECRET'],
          message:
            `looks low-entropy (${distinct} distinct characters, at least ${MIN_SECRET_DISTINCT_CHARS} needed); ` +
            'generate one with `openssl rand -base64 48`',
        });
      }
      if (env.COOKIE_SECURE === false) {
        ctx.addIssue({ code: 'custom', path: ['COOKIE_SECURE'], message: 'cannot be false in production' });
      }
    }
  });

export type Env = z.input<typeof envSchema>;

/** The validated configuration object every app builds once at startup. */
export interface TessConfig {
  env: 'development' | 'production' | 'test';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** `auto`: human-readable on a terminal (stdout is a TTY), JSON lines otherwise. */
  logFormat: 'auto' | 'json' | 'pretty';
  http: {
    host: string;
    port: number;
    publicUrl: string;
    allowedOrigins: string[];
    trustProxy: string;
    /** A connection silent this long (no byte either way) is closed; there is no cap on a whole request. */
    idleTimeoutMs: number;
  };
  database: { url: string; poolSize: number; migrateOnStart: boolean };
  redis: { url: string; prefix: string };
  session: { secret: string; idleTimeoutMs: number; absoluteTimeoutMs: number; cookieSecure: boolean };
  argon2: { memoryCost: number; timeCost: number; parallelism: number };
  loginThrottle: {
    maxFailuresPerPair: number;
    maxFailuresPerIp: number;
    maxFailuresPerAccount: number;
    accountMaxDelayMs: number;
    windowMs: number;
  };
  registerThrottle: { maxPerIp: number; windowMs: number };
  /**
   * Who may create an account (`open`: anyone; `invite`: holders of an admin's invite link; `closed`:
   * nobody, the register link is hidden) and how long an invite link lives by default.
   */
  registration: { mode: 'open' | 'invite' | 'closed'; inviteExpiryMs: number };
  /**
   * The admin area (docs/security.md item 37): accounts named in ADMIN_USERNAMES are promoted at gateway
   * start; `mfaRequired` (default: in production) sends an admin without a second factor to enrolment.
   */
  admin: { usernames: string[]; mfaRequired: boolean };
  /**
   * `/metrics`: `token` (when set) is required as `Authorization: Bearer`; `port` (when set) moves the
   * gateway's /metrics to a listener of its own (the worker serves it on its health port either way).
   */
  metrics: { token: string | null; port: number | null };
  /** Longest API token lifetime; null: tokens may never expire. */
  apiTokens: { maxLifetimeMs: number | null };
  /**
   * Two-factor sign-in; `required`: an account without a factor enrols one at its next sign-in, and
   * cannot get an API token before.
   */
  mfa: { required: boolean };
  /**
   * Share links: the longest expiry; wrong passwords per link and failures (wrong passwords and unknown
   * tokens) per client address within the window; `baseUrl` is PUBLIC_URL when set (links are otherwise
   * built from the owner's request).
   */
  shares: {
    maxExpiryMs: number;
    maxFailuresPerLink: number;
    maxFailuresPerIp: number;
    windowMs: number;
    baseUrl: string | null;
  };
  /** Outgoing mail; `smtpUrl` null: no mail is sent, and password reset by e-mail is off. */
  mail: { smtpUrl: string | null; from: string };
  /** Password reset requests allowed per e-mail address and per client IP within `windowMs`. */
  passwordReset: { maxPerAddress: number; maxPerIp: number; windowMs: number };
  dataDir: string;
  tempDir: string;
  tempMaxAgeMs: number;
  uploads: { maxFileSize: number; maxFilesPerRequest: number; quotaBytes: number; quotaFiles: number };
  /** Resumable uploads (tus 1.0.0 at /api/v1/tus): how long an unfinished upload lives, the clients' chunk. */
  tus: { uploadExpiryMs: number; chunkSize: number };
  storage: ObjectStoreConfig;
  keys: {
    provider: 'local' | 'aws-secrets-manager';
    mode: 'envelope' | 'per-file-secret';
    masterKeyFile: string;
    secretsManagerEndpoint?: string;
    secretsManagerRegion: string;
    masterKeySecretId: string;
    secretPrefix: string;
  };
  worker: {
    concurrency: number;
    healthPort: number;
    shutdownTimeoutMs: number;
    /** A job whose worker stops renewing its lock for this long is stalled and handed to another worker. */
    lockDurationMs: number;
    jobAttempts: number;
  };
  /**
   * Pipelined uploads (docs/security.md item 40): an upload of at least `minBytes` (0: never) gets a
   * follower job (`follow-file`) that hashes, checks, encrypts and stores it while it still arrives, on
   * its own queue with `concurrency` runs per worker process; a follower that sees no growth for `idleMs`
   * gives up and leaves the file to the normal `encrypt-file` job.
   */
  pipeline: { minBytes: number; concurrency: number; idleMs: number };
  /**
   * The worker's reconciler (apps/crypto-worker/src/reconcile): every `intervalMs` (and at start), files
   * `queued` or `processing` for longer than `graceMs` without a live BullMQ job are re-enqueued.
   */
  reconcile: { intervalMs: number; graceMs: number };
  /** How often a worker signs the audit chains' heads into the object store (libs/common/src/audit). */
  auditAnchorIntervalMs: number;
  /**
   * Version retention: the newest `keep` versions of a file stay, older ones (and with `maxAgeMs`, those
   * older than that) are removed by the worker's scheduled `prune-versions` job every `pruneIntervalMs`.
   * The current version always stays.
   */
  versions: { keep: number; maxAgeMs?: number; pruneIntervalMs: number };
  /** File-type policy: the gateway checks names and declared types, the worker the sniffed content. */
  content: TypePolicyConfig;
  /**
   * Malware scanning in the worker's pass (clamd INSTREAM). `required`: a file is stored only with a clean
   * verdict; an unreachable or failing scanner retries the job (fails closed).
   */
  scan: { mode: 'off' | 'required'; clamd: ClamdAddress; timeoutMs: number };
}

export function toConfig(env: z.output<typeof envSchema>, cwd = process.cwd()): TessConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));
  const dataDir = abs(env.DATA_DIR);
  const publicUrl = env.PUBLIC_URL ?? `http://${env.HOST === '0.0.0.0' ? 'localhost' : env.HOST}:${env.PORT}`;
  const origins = env.ALLOWED_ORIGINS?.split(',')
    .map((o) => o.trim())
    .filter(Boolean) ?? [new URL(publicUrl).origin];
  return {
    env: env.NODE_ENV,
    logLevel: env.LOG_LEVEL,
    logFormat: env.LOG_FORMAT,
    http: {
      host: env.HOST,
      port: env.PORT,
      publicUrl,
      allowedOrigins: origins,
      trustProxy: env.TRUST_PROXY,
      idleTimeoutMs: env.HTTP_IDLE_TIMEOUT,
    },
    database: {
      url: env.DATABASE_URL,
      poolSize: env.DATABASE_POOL_SIZE,
      migrateOnStart: env.MIGRATE_ON_START,
    },
    redis: { url: env.REDIS_URL, prefix: env.REDIS_PREFIX },
    session: {
      secret: env.SESSION_SECRET,
      idleTimeoutMs: env.SESSION_IDLE_TIMEOUT,
      absoluteTimeoutMs: env.SESSION_ABSOLUTE_TIMEOUT,
      cookieSecure: env.COOKIE_SECURE ?? env.NODE_ENV === 'production',
    },
    metrics: { token: env.METRICS_TOKEN ?? null, port: env.METRICS_PORT ?? null },
    argon2: {
      memoryCost: env.ARGON2_MEMORY_KIB,
      timeCost: env.ARGON2_TIME_COST,
      parallelism: env.ARGON2_PARALLELISM,
    },
    loginThrottle: {
      maxFailuresPerPair: env.LOGIN_MAX_FAILURES_PER_PAIR,
      maxFailuresPerIp: env.LOGIN_MAX_FAILURES_PER_IP,
      maxFailuresPerAccount: env.LOGIN_MAX_FAILURES_PER_ACCOUNT,
      accountMaxDelayMs: env.LOGIN_ACCOUNT_MAX_DELAY,
      windowMs: env.LOGIN_THROTTLE_WINDOW,
    },
    registerThrottle: { maxPerIp: env.REGISTER_MAX_PER_IP, windowMs: env.REGISTER_THROTTLE_WINDOW },
    registration: { mode: env.REGISTRATION, inviteExpiryMs: env.INVITE_EXPIRY },
    admin: {
      usernames: env.ADMIN_USERNAMES ?? [],
      mfaRequired: env.ADMIN_MFA_REQUIRED ?? env.NODE_ENV === 'production',
    },
    apiTokens: { maxLifetimeMs: env.API_TOKEN_MAX_LIFETIME ?? null },
    mfa: { required: env.MFA_REQUIRED },
    shares: {
      maxExpiryMs: env.SHARE_MAX_EXPIRY,
      maxFailuresPerLink: env.SHARE_MAX_FAILURES_PER_LINK,
      maxFailuresPerIp: env.SHARE_MAX_FAILURES_PER_IP,
      windowMs: env.SHARE_THROTTLE_WINDOW,
      baseUrl: env.PUBLIC_URL ? env.PUBLIC_URL.replace(/\/+$/, '') : null,
    },
    mail: {
      smtpUrl: env.SMTP_URL ?? null,
      from: env.MAIL_FROM ?? `TESS <no-reply@${new URL(publicUrl).hostname}>`,
    },
    passwordReset: {
      maxPerAddress: env.PASSWORD_RESET_MAX_PER_ADDRESS,
      maxPerIp: env.PASSWORD_RESET_MAX_PER_IP,
      windowMs: env.PASSWORD_RESET_THROTTLE_WINDOW,
    },
    dataDir,
    tempDir: env.TEMP_DIR ? abs(env.TEMP_DIR) : join(dataDir, 'tmp'),
    tempMaxAgeMs: env.TEMP_MAX_AGE,
    uploads: {
      maxFileSize: env.MAX_FILE_SIZE,
      maxFilesPerRequest: env.MAX_FILES_PER_REQUEST,
      quotaBytes: env.QUOTA_BYTES,
      quotaFiles: env.QUOTA_FILES,
    },
    tus: { uploadExpiryMs: env.TUS_UPLOAD_EXPIRY, chunkSize: env.TUS_CHUNK_SIZE },
    storage:
      env.STORAGE_DRIVER === 's3'
        ? {
            driver: 's3',
            bucket: env.S3_BUCKET!,
            region: env.S3_REGION,
            endpoint: env.S3_ENDPOINT,
            forcePathStyle: env.S3_FORCE_PATH_STYLE,
            partSize: env.S3_PART_SIZE,
            queueSize: env.S3_QUEUE_SIZE,
            credentials:
              env.S3_ACCESS_KEY_ID && env.S3_SECRET_ACCESS_KEY
                ? { accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY }
                : undefined,
          }
        : { driver: 'local', root: dataDir },
    keys: {
      provider: env.KEY_PROVIDER,
      mode: env.KEY_MODE,
      masterKeyFile: env.MASTER_KEY_FILE ? abs(env.MASTER_KEY_FILE) : join(dataDir, 'master.key'),
      secretsManagerEndpoint: env.SECRETS_MANAGER_ENDPOINT,
      secretsManagerRegion: env.SECRETS_MANAGER_REGION ?? env.S3_REGION,
      masterKeySecretId: env.MASTER_KEY_SECRET_ID,
      secretPrefix: env.SECRET_PREFIX,
    },
    worker: {
      concurrency: env.WORKER_CONCURRENCY,
      healthPort: env.WORKER_HEALTH_PORT,
      shutdownTimeoutMs: env.WORKER_SHUTDOWN_TIMEOUT,
      lockDurationMs: env.WORKER_LOCK_DURATION,
      jobAttempts: env.JOB_ATTEMPTS,
    },
    pipeline: {
      minBytes: env.PIPELINE_MIN_BYTES,
      concurrency: env.PIPELINE_CONCURRENCY,
      idleMs: env.PIPELINE_IDLE,
    },
    reconcile: { intervalMs: env.RECONCILE_INTERVAL, graceMs: env.RECONCILE_GRACE },
    auditAnchorIntervalMs: env.AUDIT_ANCHOR_INTERVAL,
    versions: {
      keep: env.VERSIONS_KEEP,
      maxAgeMs: env.VERSIONS_MAX_AGE,
      pruneIntervalMs: env.VERSIONS_PRUNE_INTERVAL,
    },
    content: {
      allowedTypes: env.ALLOWED_TYPES ?? [],
      blockedTypes: env.BLOCKED_TYPES ?? [...DEFAULT_BLOCKED_TYPES],
      blockActiveContent: env.BLOCK_ACTIVE_CONTENT,
      typeMismatch: env.TYPE_MISMATCH,
    },
    scan: { mode: env.SCAN_MODE, clamd: parseClamdUrl(env.CLAMD_URL)!, timeoutMs: env.SCAN_TIMEOUT },
  };
}
