import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { INestApplicationContext } from '@nestjs/common';
import { Queue } from 'bullmq';
import { DataSource } from 'typeorm';
import {
  AuditRepository,
  bullPrefix,
  type FileEntity,
  FileRepository,
  OBJECT_STORE,
  type ObjectStore,
  objectKeyFor,
  QUEUE_NAMES,
  UserRepository,
} from '#common';
import { type RunningGateway, startGateway, startInProcessWorker } from '../support/apps.js';
import { type PartSpec, postMultipart } from '../support/multipart.js';
import { type S3rverHandle, startS3rver } from '../support/s3rver.js';
import { createTestEnv, type TestEnv } from '../support/test-env.js';
import type { TestUser } from '../support/users.js';

/** Shared by the test/api specs: a gateway + in-process worker over a real store, raw HTTP downloads. */

export const MiB = 1024 * 1024;
/** Ciphertext segment size written by the worker (1 MiB). */
export const SEGMENT = MiB;
/** Plaintext bytes per segment (1 MiB - 16). */
export const P = SEGMENT - 16;
export const TAG = 16;
export const SHA256_OF_NOTHING = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export type StoreKind = 'local' | 's3';

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** One request seen by the recording S3 proxy. */
export interface RecordedS3Request {
  method: string;
  path: string;
  range: string | undefined;
  status: number;
  /** Body bytes the proxy relayed back to the gateway. */
  bytes: number;
}

/** A transparent HTTP proxy that records method, path, Range header and answered bytes of each request. */
export interface RecordingProxy {
  endpoint: string;
  requests: RecordedS3Request[];
  close(): Promise<void>;
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const requests: RecordedS3Request[] = [];
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const entry: RecordedS3Request = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      range: req.headers.range,
      status: 0,
      bytes: 0,
    };
    requests.push(entry);
    const forward = http.request(
      {
        agent,
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        entry.status = answer.statusCode ?? 0;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.on('data', (chunk: Buffer) => {
          entry.bytes += chunk.length;
        });
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    forward.on('error', () => res.destroy());
    res.on('close', () => {
      if (!res.writableEnded) forward.destroy();
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

export interface World {
  kind: StoreKind;
  env: TestEnv;
  gateway: RunningGateway;
  server: Server;
  base: string;
  files: FileRepository;
  audit: AuditRepository;
  users: UserRepository;
  dataSource: DataSource;
  /** The object store instance the gateway reads through (spy on it to see what is fetched). */
  store: ObjectStore;
  queue: Queue;
  s3?: S3rverHandle;
  /** Present when started with `recordS3: true`: every S3 request the apps made. */
  recorder?: RecordingProxy;
  worker?: INestApplicationContext;
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A private TESS for one spec: test env (database, Redis prefix, data dir), s3rver when `kind` is s3,
 * the real gateway and, unless `worker: false`, the real crypto worker in-process.
 */
export async function startWorld(
  kind: StoreKind,
  options: { env?: Record<string, string>; worker?: boolean; recordS3?: boolean } = {},
): Promise<World> {
  let s3: S3rverHandle | undefined;
  let recorder: RecordingProxy | undefined;
  const overrides: Record<string, string> = { ...options.env };
  if (kind === 's3') {
    s3 = await startS3rver();
    if (options.recordS3) recorder = await startRecordingProxy(s3.endpoint);
    Object.assign(overrides, {
      STORAGE_DRIVER: 's3',
      S3_BUCKET: s3.bucket,
      S3_REGION: s3.region,
      S3_ENDPOINT: recorder?.endpoint ?? s3.endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    });
  }
  const env = await createTestEnv(overrides);
  const gateway = await startGateway(env.config);
  const queue = new Queue(QUEUE_NAMES.crypto, {
    connection: { url: env.config.redis.url },
    prefix: bullPrefix(env.config.redis.prefix),
  });
  const world: World = {
    kind,
    env,
    gateway,
    server: gateway.app.getHttpServer(),
    base: gateway.url,
    files: gateway.app.get(FileRepository),
    audit: gateway.app.get(AuditRepository),
    users: gateway.app.get(UserRepository),
    dataSource: gateway.app.get(DataSource),
    store: gateway.app.get<ObjectStore>(OBJECT_STORE),
    queue,
    s3,
    recorder,
    async startWorker() {
      if (!world.worker) world.worker = await startInProcessWorker(env.config);
    },
    async stopWorker() {
      await world.worker?.close();
      world.worker = undefined;
    },
    async close() {
      await world.stopWorker().catch(() => undefined);
      await queue.close().catch(() => undefined);
      await gateway.app.close().catch(() => undefined);
      await recorder?.close().catch(() => undefined);
      await s3?.close().catch(() => undefined);
      await env.cleanup();
    },
  };
  if (options.worker !== false) await world.startWorker();
  return world;
}

export async function userId(world: World, user: TestUser): Promise<string> {
  const row = await world.users.findByUsername(user.username);
  if (!row) throw new Error(`no user ${user.username}`);
  return row.id;
}

export interface Accepted {
  id: string;
  filename: string;
  size: number;
  status: string;
  jobId: string;
}

/** POST /api/v1/uploads (bearer token, streamed); expects 202. */
export async function upload(world: World, user: TestUser, parts: PartSpec[]): Promise<Accepted[]> {
  const res = await postMultipart(`${world.base}/api/v1/uploads`, parts, { headers: user.auth });
  if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${res.body}`);
  return (JSON.parse(res.body) as { files: Accepted[] }).files;
}

/** Polls `probe` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Waits for the row to be `stored`; fails at once with the row's error when it ends `failed`. */
export async function waitStored(world: World, id: string, timeoutMs = 60_000): Promise<FileEntity> {
  return waitFor(
    `file ${id} to be stored`,
    async () => {
      const row = await world.files.findById(id);
      if (row?.status === 'failed') throw new Error(`file ${id} failed: ${row.error}`);
      return row?.status === 'stored' ? row : undefined;
    },
    timeoutMs,
  );
}

export async function waitStatus(world: World, id: string, status: string, timeoutMs = 30_000) {
  return waitFor(
    `file ${id} to be ${status}`,
    async () => {
      const row = await world.files.findById(id);
      return row?.status === status ? row : undefined;
    },
    timeoutMs,
  );
}

export interface RawDownload {
  /** 0 when the connection ended before a status line. */
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  bytes: number;
  sha256: string;
  /** The body ended cleanly with every byte the headers promised. */
  complete: boolean;
  error?: string;
}

/**
 * A raw HTTP request that reports an aborted body (or a connection cut before the status line) instead
 * of failing, hashes the body as it arrives and keeps it unless `keepBody` is false.
 */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; keepBody?: boolean } = {},
): Promise<RawDownload> {
  const keep = options.keepBody ?? true;
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let bytes = 0;
    let settled = false;
    const finish = (result: Omit<RawDownload, 'body' | 'bytes' | 'sha256'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...result, body: Buffer.concat(chunks), bytes, sha256: hash.digest('hex') });
    };
    const req = http.request(url, {
      method: options.method ?? 'GET',
      headers: options.headers,
      agent: false,
    });
    req.on('response', (res) => {
      let error: string | undefined;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
        if (keep) chunks.push(chunk);
      });
      res.on('error', (e) => {
        error = e.message;
      });
      res.on('close', () => {
        const length = res.headers['content-length'];
        const complete = res.complete && (length === undefined || Number(length) === bytes);
        finish({ status: res.statusCode ?? 0, headers: res.headers, complete, error });
      });
    });
    req.on('error', (e) => finish({ status: 0, headers: {}, complete: false, error: e.message }));
    req.end();
  });
}

export function downloadContent(
  world: World,
  user: TestUser,
  id: string,
  headers: Record<string, string> = {},
) {
  return rawRequest(`${world.base}/api/v1/files/${id}/content`, { headers: { ...user.auth, ...headers } });
}

// ---- the stored objects, behind the apps' backs ----

function s3Client(world: World): S3Client {
  const s3 = world.s3!;
  return new S3Client({
    endpoint: s3.s3rverEndpoint,
    forcePathStyle: true,
    region: s3.region,
    credentials: s3.credentials,
  });
}

export function localObjectPath(world: World, id: string): string {
  return join(world.env.config.dataDir, objectKeyFor(id));
}

/** The encrypted object's bytes (local file or s3rver object). */
export async function readObject(world: World, id: string): Promise<Buffer> {
  if (world.kind === 'local') return readFile(localObjectPath(world, id));
  const client = s3Client(world);
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: world.s3!.bucket, Key: objectKeyFor(id) }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } finally {
    client.destroy();
  }
}

/** Replaces the encrypted object (local: rewrite the file; s3: PutObject straight to s3rver). */
export async function writeObject(world: World, id: string, bytes: Buffer): Promise<void> {
  if (world.kind === 'local') {
    await writeFile(localObjectPath(world, id), bytes);
    return;
  }
  const client = s3Client(world);
  try {
    await client.send(new PutObjectCommand({ Bucket: world.s3!.bucket, Key: objectKeyFor(id), Body: bytes }));
  } finally {
    client.destroy();
  }
}

export async function objectExists(world: World, id: string): Promise<boolean> {
  if (world.kind === 'local') {
    return stat(localObjectPath(world, id)).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false;
        throw error;
      },
    );
  }
  const client = s3Client(world);
  try {
    await client.send(new HeadObjectCommand({ Bucket: world.s3!.bucket, Key: objectKeyFor(id) }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return false;
    throw error;
  } finally {
    client.destroy();
  }
}

/** Every object key in the store (local: files under DATA_DIR/objects, temp names included). */
export async function listObjects(world: World): Promise<string[]> {
  if (world.kind === 'local') {
    const names = await readdir(join(world.env.config.dataDir, 'objects')).catch(() => []);
    return names.map((name) => `objects/${name}`).sort();
  }
  const client = s3Client(world);
  try {
    const out = await client.send(new ListObjectsV2Command({ Bucket: world.s3!.bucket }));
    return (out.Contents ?? []).map((o) => o.Key!).sort();
  } finally {
    client.destroy();
  }
}

/** Header length `H` of a stored object, from its row: encryptedSize - size - 16 * segments. */
export function headerLength(row: Pick<FileEntity, 'size' | 'encryptedSize'>): number {
  const segments = Math.max(1, Math.ceil(row.size / P));
  return row.encryptedSize! - row.size - TAG * segments;
}
