import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Queue } from 'bullmq';
import { DataSource } from 'typeorm';
import {
  bullPrefix,
  type ConfiguredKeyProvider,
  createObjectDecryptStream,
  type FileEntity,
  FileRepository,
  type FileStatus,
  keyProviderFromConfig,
  type ObjectHeader,
  objectKeyFor,
  objectStoreFromConfig,
  QUEUE_NAMES,
  type TessConfig,
} from '#common';
import { createGatewayApp } from '../../apps/gateway/src/app.factory.js';
import { type PartSpec, postMultipart } from '../support/multipart.js';
import type { TestProcess } from '../support/processes.js';
import type { S3rverHandle } from '../support/s3rver.js';
import type { TestUser } from '../support/users.js';

/** Shared by the pipeline specs: a real gateway, uploads through the API, polling and object checks. */

export const MiB = 1024 * 1024;
export const SHA256_OF_NOTHING = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const SHA1_OF_NOTHING = 'da39a3ee5e6b4b0d3255bfef95601890afd80709';

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha1(data: Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}

export interface Gateway {
  app: NestExpressApplication;
  base: string;
  files: FileRepository;
  dataSource: DataSource;
  /** The crypto queue, to look at jobs (job id = file id) and add duplicates. */
  queue: Queue;
  close(): Promise<void>;
}

/** The gateway in-process, listening on a random loopback port (it also applies the migrations). */
export async function startGateway(config: TessConfig): Promise<Gateway> {
  const app = await createGatewayApp(config);
  await app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  const queue = new Queue(QUEUE_NAMES.crypto, {
    connection: { url: config.redis.url },
    prefix: bullPrefix(config.redis.prefix),
  });
  return {
    app,
    base,
    files: app.get(FileRepository),
    dataSource: app.get(DataSource),
    queue,
    async close() {
      await queue.close();
      await app.close();
    },
  };
}

export interface UploadedFile {
  id: string;
  filename: string;
  size: number;
  status: string;
  jobId: string;
}

/** POST /api/v1/uploads with a bearer token, streamed; expects 202 and returns the accepted files. */
export async function upload(gateway: Gateway, user: TestUser, parts: PartSpec[]): Promise<UploadedFile[]> {
  const res = await postMultipart(`${gateway.base}/api/v1/uploads`, parts, { headers: user.auth });
  if (res.status !== 202) throw new Error(`Upload answered ${res.status}: ${res.body}`);
  return (JSON.parse(res.body) as { files: UploadedFile[] }).files;
}

/**
 * Polls `probe` until it returns something other than undefined/null/false, or fails after `timeoutMs`
 * with what it was waiting for, the last value seen and the workers' output.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  options: { timeoutMs?: number; intervalMs?: number; workers?: TestProcess[]; last?: () => unknown } = {},
): Promise<T> {
  const { timeoutMs = 30_000, intervalMs = 100 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) {
      const last = options.last ? `\nlast seen: ${JSON.stringify(await options.last())}` : '';
      const outputs = (options.workers ?? [])
        .map(
          (w) => `\n--- ${w.name} (pid ${w.pid}, exit ${JSON.stringify(w.exitStatus())}) ---\n${w.output()}`,
        )
        .join('');
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last}${outputs}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Waits until the file's row has `status`; fails at once, with the row's error, when it reaches another
 * final status instead.
 */
export async function waitForStatus(
  gateway: Gateway,
  id: string,
  status: FileStatus,
  options: { timeoutMs?: number; workers?: TestProcess[] } = {},
): Promise<FileEntity> {
  const final: FileStatus[] = ['stored', 'failed', 'corrupt'];
  let row: FileEntity | null = null;
  return waitFor(
    `file ${id} to be ${status}`,
    async () => {
      row = await gateway.files.findById(id);
      if (row && row.status !== status && final.includes(row.status)) {
        const outputs = (options.workers ?? []).map((w) => `\n--- ${w.name} ---\n${w.output()}`).join('');
        throw new Error(
          `file ${id} ended ${row.status} instead of ${status}: ${row.error ?? '(no error)'}${outputs}`,
        );
      }
      return row?.status === status ? row : undefined;
    },
    { ...options, last: () => (row ? { status: row.status, error: row.error } : null) },
  );
}

/**
 * Waits until the file's job (job id = file id) has finished in `state`: the worker's run is over, so
 * everything it does after committing the row (temp file removal, audit event) has happened too.
 */
export async function waitForJob(
  gateway: Gateway,
  id: string,
  state: 'completed' | 'failed',
  options: { timeoutMs?: number; workers?: TestProcess[] } = {},
): Promise<void> {
  let seen = 'missing';
  await waitFor(
    `job ${id} to be ${state}`,
    async () => {
      const job = await gateway.queue.getJob(id);
      seen = job ? await job.getState() : 'missing';
      if (seen === 'failed' && state !== 'failed') throw new Error(`job ${id} failed: ${job?.failedReason}`);
      return seen === state;
    },
    { ...options, last: () => seen },
  );
}

/** Waits until the file is stored and its job completed; returns the row. */
export async function waitForStored(
  gateway: Gateway,
  id: string,
  options: { timeoutMs?: number; workers?: TestProcess[] } = {},
): Promise<FileEntity> {
  await waitForStatus(gateway, id, 'stored', options);
  await waitForJob(gateway, id, 'completed', options);
  return (await gateway.files.findById(id))!;
}

export interface DecryptedObject {
  sha256: string;
  bytes: number;
  encryptedSize: number;
  header: ObjectHeader;
}

/**
 * Reads the stored object through the configured object store and decrypts it with the library, unwrapping
 * the data key named by the header with the configured key provider (as a recovery from bucket + master key
 * would). Only the plaintext's SHA-256 and length are kept.
 */
export async function decryptStored(
  config: TessConfig,
  fileId: string,
  options: {
    keys?: ConfiguredKeyProvider;
    /** Unwrap the key the files row records instead of the one in the header (they must agree). */
    rowKey?: { keyRef: string; wrappedKey: Buffer };
  } = {},
): Promise<DecryptedObject> {
  const keys = options.keys ?? keyProviderFromConfig(config);
  const store = objectStoreFromConfig(config);
  try {
    const key = objectKeyFor(fileId);
    const stat = await store.stat(key);
    if (!stat) throw new Error(`No object ${key} in the ${store.driver} store`);
    const hash = createHash('sha256');
    let bytes = 0;
    const decrypt = createObjectDecryptStream({
      fileId,
      getDataKey: (header) =>
        keys.unwrapDataKey(
          fileId,
          options.rowKey ?? { keyRef: header.keyRef, wrappedKey: header.wrappedKey },
        ),
    });
    await pipeline(await store.getRange(key, 0), decrypt, async (plaintext: AsyncIterable<Buffer>) => {
      for await (const chunk of plaintext) {
        hash.update(chunk);
        bytes += chunk.length;
      }
    });
    return { sha256: hash.digest('hex'), bytes, encryptedSize: stat.size, header: decrypt.header! };
  } finally {
    await store.close();
  }
}

export async function tempFiles(config: TessConfig): Promise<string[]> {
  return readdir(config.tempDir).catch(() => []);
}

export async function auditCount(gateway: Gateway, fileId: string, action: string): Promise<number> {
  const rows: Array<{ n: string }> = await gateway.dataSource.query(
    'SELECT count(*) AS n FROM audit_events WHERE file_id = $1 AND action = $2',
    [fileId, action],
  );
  return Number(rows[0]?.n ?? 0);
}

/** The worker environment for an s3rver (through its fault proxy). */
export function s3Env(s3: S3rverHandle): Record<string, string> {
  return {
    STORAGE_DRIVER: 's3',
    S3_BUCKET: s3.bucket,
    S3_REGION: s3.region,
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: 'true',
    S3_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
  };
}

/** A raw S3 client on the proxy endpoint, to look at the bucket the way an operator would. */
export function s3Client(s3: S3rverHandle): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Keys of the open multipart uploads under `prefix` (served by the proxy, since s3rver lacks the call). */
export async function openMultipartUploads(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const out = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  return (out.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
}

/** Object keys under `prefix`. */
export async function objectKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

export async function objectETag(client: S3Client, bucket: string, key: string): Promise<string | undefined> {
  const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return out.ETag;
}

/** Parts that reached s3rver's disk (`._S3rver_uploads/<uploadId>/<n>.md5` is written once part n is whole). */
export async function partsOnS3rver(s3: S3rverHandle): Promise<number> {
  const uploads = join(s3.directory, s3.bucket, '._S3rver_uploads');
  let count = 0;
  for (const id of await readdir(uploads).catch(() => [] as string[])) {
    const entries = await readdir(join(uploads, id)).catch(() => [] as string[]);
    count += entries.filter((entry) => /^\d+\.md5$/.test(entry)).length;
  }
  return count;
}
