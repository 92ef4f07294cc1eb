import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Queue } from 'bullmq';
import pg from 'pg';
import { DataSource } from 'typeorm';
import {
  AuditRepository,
  auditKeyringFromConfig,
  bullPrefix,
  createDataSource,
  createRedisClient,
  deleteKeysWithPrefix,
  ensureDatabase,
  FileRepository,
  loadConfig,
  OBJECT_STORE,
  type ObjectStore,
  objectKeyFor,
  objectStoreFromConfig,
  QUEUE_NAMES,
  type TessConfig,
  UserRepository,
} from '#common';
import { WorkerModule } from '../../apps/crypto-worker/src/worker.module.js';
import { createGatewayApp } from '../../apps/gateway/src/app.factory.js';
import { GATEWAY_ENTRY } from './paths.js';
import { freePort } from './ports.js';
import { type PostgresServer, startPostgresServer } from './postgres-server.js';
import { startProcess, startWorker, type TestProcess } from './processes.js';
import { type RedisServer, startRedisServer } from './redis-server.js';
import { type S3rverHandle, startS3rver } from './s3rver.js';
import { type SecretsManagerFake, startSecretsManagerFake } from './secrets-manager-fake.js';

/**
 * The one test world: a private PostgreSQL database, Redis key prefix (sessions, throttles and queues
 * all live under it) and data/temp directories, an object store of either driver, and the apps a spec
 * asks for: the gateway in-process (supertest) or as real processes, the crypto worker in-process or as
 * real processes. `close()` removes all of it. The only place the test helpers reach the object store's
 * key layout and lifecycle, so a production move there is one line here.
 */

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export type StoreKind = 'local' | 's3';

/** The object key of a file's encrypted object. */
export const objectKey = (fileId: string): string => objectKeyFor(fileId);

/** An object store built from config, as the apps build theirs; release it with `store.close()`. */
export function openStore(config: TessConfig): ObjectStore {
  return objectStoreFromConfig(config);
}

export interface WorldOptions {
  /** Object store driver (default local); `s3` starts s3rver behind the recording fault proxy. */
  store?: StoreKind;
  /**
   * `app` (default): the gateway Nest app in this process, listening on loopback; `process`: real
   * gateway processes from dist/; `none`: no gateway (start one later with `startGateway`).
   */
  gateway?: 'app' | 'process' | 'none';
  /** How many gateway processes with `gateway: 'process'` (default 1). */
  gateways?: number;
  /** `in-process`: the worker module in this process; a number: that many worker processes (default none). */
  workers?: 'in-process' | number;
  /** ALLOWED_ORIGINS = the gateways' own URLs (their ports are picked before they start). */
  ownOrigins?: boolean;
  /** PUBLIC_URL = the first gateway's own URL (links TESS builds, as in mail, then open in a browser). */
  ownPublicUrl?: boolean;
  /**
   * The host name of the gateways' own URLs (default 127.0.0.1; they listen on loopback either way).
   * `localhost` for WebAuthn, whose relying-party id cannot be an IP address.
   */
  ownHost?: string;
  /** A private redis-server started with these extra arguments instead of the shared Redis. */
  privateRedis?: string[];
  /** A private PostgreSQL cluster (test/support/postgres-server.ts) instead of the shared server. */
  privatePostgres?: boolean;
  /** KEY_PROVIDER=aws-secrets-manager against the Secrets Manager fake (a fresh one unless given). */
  secretsManager?: {
    mode: 'envelope' | 'per-file-secret';
    masterKeySecretId?: string;
    fake?: SecretsManagerFake;
  };
  /** Environment overrides, applied last. */
  env?: Record<string, string>;
}

export interface RunningGateway {
  app: NestExpressApplication;
  url: string;
}

export interface StartWorkerOptions {
  name?: string;
  /** Added to the world's environment. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

export interface World {
  id: string;
  config: TessConfig;
  /** The environment the config was built from (real processes start with it). */
  env: Record<string, string>;
  kind: StoreKind;
  s3?: S3rverHandle;
  secretsManager?: SecretsManagerFake;
  redisServer?: RedisServer;
  postgresServer?: PostgresServer;
  /** The in-process gateway (throws when the world has none). */
  readonly app: NestExpressApplication;
  readonly server: Server;
  /** The first gateway's URL. */
  readonly base: string;
  /** Every gateway's URL (in-process or processes). */
  urls: string[];
  readonly files: FileRepository;
  readonly audit: AuditRepository;
  readonly users: UserRepository;
  readonly dataSource: DataSource;
  /** The object store the in-process gateway reads through (spy on it), else one built from config. */
  readonly store: ObjectStore;
  /** The crypto queue (job id = file id). */
  readonly queue: Queue;
  /** The in-process worker, while it runs. */
  worker?: INestApplicationContext;
  gatewayProcesses: TestProcess[];
  /** Worker processes started by this world (exited ones included). */
  workers: TestProcess[];
  startInProcessWorker(): Promise<void>;
  stopInProcessWorker(): Promise<void>;
  /** Starts a worker process from dist/ and waits until it consumes the queue. */
  startWorker(options?: StartWorkerOptions): Promise<TestProcess>;
  /** Another in-process gateway (with `config`, default the world's), closed with the world. */
  startGateway(config?: TessConfig): Promise<RunningGateway>;
  close(): Promise<void>;
}

async function dropDatabase(name: string, adminUrl = ADMIN_URL): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

async function listenGateway(config: TessConfig, port = 0): Promise<RunningGateway> {
  const app = await createGatewayApp(config);
  await app.listen(port, '127.0.0.1');
  return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
}

/** The crypto worker module inside the test process (fast to start); its health port is picked by the OS. */
async function inProcessWorker(config: TessConfig): Promise<INestApplicationContext> {
  const worker = await NestFactory.createApplicationContext(
    WorkerModule.forRoot({ ...config, worker: { ...config.worker, healthPort: 0 } }),
    { logger: ['error', 'warn'], abortOnError: false },
  );
  await worker.init();
  return worker;
}

function s3Env(s3: S3rverHandle): Record<string, string> {
  return {
    STORAGE_DRIVER: 's3',
    S3_BUCKET: s3.bucket,
    S3_REGION: s3.region,
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: 'true',
    // The S3 minimum rather than the 8 MiB default: files of a few MiB then take the multipart path, with
    // several parts, as large files do in production.
    S3_PART_SIZE: '5MiB',
    S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
  };
}

export async function createWorld(options: WorldOptions = {}): Promise<World> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };
  try {
    return await build(options, cleanups, closeAll);
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function build(
  options: WorldOptions,
  cleanups: Array<() => Promise<unknown>>,
  closeAll: () => Promise<void>,
): Promise<World> {
  const kind = options.store ?? 'local';
  const gatewayMode = options.gateway ?? 'app';
  const id = randomBytes(5).toString('hex');
  const overrides: Record<string, string> = {};

  let redisServer: RedisServer | undefined;
  if (options.privateRedis) {
    const server = await startRedisServer(options.privateRedis);
    cleanups.push(() => server.dispose());
    redisServer = server;
  }
  const redisUrl = redisServer?.url ?? REDIS_URL;

  let postgresServer: PostgresServer | undefined;
  if (options.privatePostgres) {
    const server = await startPostgresServer();
    cleanups.push(() => server.dispose());
    postgresServer = server;
  }
  const adminUrl = postgresServer?.adminUrl ?? ADMIN_URL;

  let s3: S3rverHandle | undefined;
  if (kind === 's3') {
    const handle = await startS3rver();
    cleanups.push(() => handle.close());
    s3 = handle;
    Object.assign(overrides, s3Env(handle));
  }

  let secretsManager: SecretsManagerFake | undefined;
  if (options.secretsManager) {
    secretsManager = options.secretsManager.fake;
    if (!secretsManager) {
      const fake = await startSecretsManagerFake();
      cleanups.push(() => fake.close());
      secretsManager = fake;
    }
    Object.assign(overrides, {
      KEY_PROVIDER: 'aws-secrets-manager',
      KEY_MODE: options.secretsManager.mode,
      SECRETS_MANAGER_ENDPOINT: secretsManager.endpoint,
      SECRETS_MANAGER_REGION: 'us-east-1',
      ...(options.secretsManager.masterKeySecretId
        ? { MASTER_KEY_SECRET_ID: options.secretsManager.masterKeySecretId }
        : {}),
    });
  }

  const gatewayCount = gatewayMode === 'process' ? (options.gateways ?? 1) : gatewayMode === 'app' ? 1 : 0;
  const ports: number[] = [];
  const ownPorts = options.ownOrigins || options.ownPublicUrl;
  if (gatewayMode === 'process' || ownPorts) {
    for (let i = 0; i < gatewayCount; i++) ports.push(await freePort());
  }
  const urls = ports.map((port) => `http://${options.ownHost ?? '127.0.0.1'}:${port}`);
  if (options.ownOrigins) overrides.ALLOWED_ORIGINS = urls.join(',');
  if (options.ownPublicUrl && urls[0]) overrides.PUBLIC_URL = urls[0];
  if (gatewayMode === 'app' && ports[0] !== undefined) overrides.PORT = String(ports[0]);

  const database = `tess_test_${id}`;
  const databaseUrl = new URL(adminUrl);
  databaseUrl.pathname = `/${database}`;
  await ensureDatabase(databaseUrl.toString());
  // A private cluster goes away as a whole.
  if (!postgresServer) cleanups.push(() => dropDatabase(database));
  const dataDir = await mkdtemp(join(tmpdir(), `tess-test-${id}-`));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'error',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: databaseUrl.toString(),
    DATABASE_POOL_SIZE: '4',
    REDIS_URL: redisUrl,
    REDIS_PREFIX: `tess-test-${id}`,
    DATA_DIR: dataDir,
    // Specs register many users from loopback; test/gateway/login-protection.e2e.spec.ts sets its own.
    REGISTER_MAX_PER_IP: '100000',
    // TEST_PIPELINE_MIN_BYTES=1 runs any spec with every upload followed while it arrives (item 40).
    ...(process.env.TEST_PIPELINE_MIN_BYTES
      ? { PIPELINE_MIN_BYTES: process.env.TEST_PIPELINE_MIN_BYTES }
      : {}),
    ...overrides,
    ...options.env,
  };
  const config = loadConfig(env);
  // Registered before anything writes under the prefix; runs after every app has closed.
  cleanups.push(async () => {
    const redis = createRedisClient(config.redis.url);
    await redis.connect();
    await deleteKeysWithPrefix(redis, `${env.REDIS_PREFIX}:`);
    redis.disconnect();
  });

  let gateway: RunningGateway | undefined;
  let queue: Queue | undefined;
  let ownStore: ObjectStore | undefined;
  let ownAudit: AuditRepository | undefined;
  // Worlds whose gateways are processes read the database through a connection of their own.
  let ownDataSource: DataSource | undefined;
  const gatewayProcesses: TestProcess[] = [];
  const workers: TestProcess[] = [];
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`This world has no ${what}`);
    return value;
  };

  const world: World = {
    id,
    config,
    env,
    kind,
    s3,
    secretsManager,
    redisServer,
    postgresServer,
    get app() {
      return need(gateway, 'in-process gateway').app;
    },
    get server() {
      return world.app.getHttpServer();
    },
    get base() {
      return need(urls[0], 'gateway');
    },
    urls,
    get files() {
      return gateway ? gateway.app.get(FileRepository) : new FileRepository(world.dataSource);
    },
    get audit() {
      if (gateway) return gateway.app.get(AuditRepository);
      if (!ownAudit) {
        const keyring = auditKeyringFromConfig(config);
        cleanups.push(() => keyring.close());
        ownAudit = new AuditRepository(world.dataSource, keyring);
      }
      return ownAudit;
    },
    get users() {
      return gateway ? gateway.app.get(UserRepository) : new UserRepository(world.dataSource);
    },
    get dataSource() {
      return gateway ? gateway.app.get(DataSource) : need(ownDataSource, 'database connection');
    },
    get store() {
      if (gateway) return gateway.app.get<ObjectStore>(OBJECT_STORE);
      if (!ownStore) {
        const store = openStore(config);
        cleanups.push(() => store.close());
        ownStore = store;
      }
      return ownStore;
    },
    get queue() {
      if (!queue) {
        const created = new Queue(QUEUE_NAMES.crypto, {
          connection: { url: config.redis.url },
          prefix: bullPrefix(config.redis.prefix),
        });
        cleanups.push(() => created.close());
        queue = created;
      }
      return queue;
    },
    gatewayProcesses,
    workers,
    async startInProcessWorker() {
      if (world.worker) return;
      world.worker = await inProcessWorker(config);
      cleanups.push(() => world.stopInProcessWorker());
    },
    async stopInProcessWorker() {
      await world.worker?.close();
      world.worker = undefined;
    },
    async startWorker(start = {}) {
      const worker = await startWorker({ ...env, ...start.env }, start);
      workers.push(worker);
      cleanups.push(() => worker.stop(5_000));
      return worker;
    },
    async startGateway(gatewayConfig = config) {
      const started = await listenGateway(gatewayConfig);
      cleanups.push(() => started.app.close());
      return started;
    },
    close: closeAll,
  };

  if (gatewayMode === 'app') {
    gateway = await listenGateway(config, ports[0]);
    cleanups.push(() => gateway!.app.close());
    if (!urls.length) urls.push(gateway.url);
  } else if (gatewayMode === 'process') {
    const started = ports.map((port, i) =>
      startProcess(`gateway-${i + 1}`, GATEWAY_ENTRY, { ...env, LOG_LEVEL: 'info', PORT: String(port) }),
    );
    gatewayProcesses.push(...started);
    for (const proc of started) cleanups.push(() => proc.stop(5_000));
    await Promise.all(started.map((g) => g.waitForOutput(/gateway listening on/, 30_000)));
    // The gateways have migrated the database by now.
    const own = createDataSource(config);
    await own.initialize();
    cleanups.push(() => own.destroy());
    ownDataSource = own;
  }
  if (options.workers === 'in-process') await world.startInProcessWorker();
  else for (let i = 0; i < (options.workers ?? 0); i++) await world.startWorker();
  return world;
}
