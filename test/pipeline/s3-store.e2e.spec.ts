import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { objectKeyFor } from '#common';
import { killAllProcesses, startWorker, type TestProcess } from '../support/processes.js';
import { type S3rverHandle, startS3rver } from '../support/s3rver.js';
import { createTestEnv, type TestEnv } from '../support/test-env.js';
import { createUser, type TestUser } from '../support/users.js';
import {
  auditCount,
  decryptStored,
  type Gateway,
  MiB,
  objectKeys,
  openMultipartUploads,
  s3Client,
  s3Env,
  sha1,
  sha256,
  startGateway,
  tempFiles,
  upload,
  waitForJob,
  waitForStatus,
  waitForStored,
} from './pipeline.helpers.js';

/**
 * Upload -> worker process -> S3 multipart upload to s3rver (through the fault proxy), with injected
 * UploadPart failures. JOB_ATTEMPTS=2 so a persistent failure ends the job quickly.
 */

let s3: S3rverHandle;
let env: TestEnv;
let gateway: Gateway;
let worker: TestProcess;
let client: S3Client;
let alice: TestUser;

beforeAll(async () => {
  s3 = await startS3rver();
  env = await createTestEnv({ ...s3Env(s3), JOB_ATTEMPTS: '2' });
  gateway = await startGateway(env.config);
  worker = await startWorker(env.env);
  client = s3Client(s3);
  alice = await createUser(gateway.app.getHttpServer(), `alice_${env.id}`);
});

afterEach(() => {
  s3?.proxy.clear();
});

afterAll(async () => {
  await worker?.stop();
  await killAllProcesses();
  client?.destroy();
  await gateway?.close();
  await s3?.close();
  await env?.cleanup();
});

async function expectStoredExactly(id: string, body: Buffer): Promise<void> {
  const row = await waitForStored(gateway, id, { workers: [worker] });
  expect(row).toMatchObject({
    sha1: sha1(body),
    sha256: sha256(body),
    storageDriver: 's3',
    objectKey: objectKeyFor(id),
  });
  const decrypted = await decryptStored(env.config, id);
  expect({ sha256: decrypted.sha256, bytes: decrypted.bytes }).toEqual({
    sha256: sha256(body),
    bytes: body.length,
  });
  expect(decrypted.encryptedSize).toBe(row.encryptedSize);
  expect(await objectKeys(client, s3.bucket, objectKeyFor(id))).toEqual([objectKeyFor(id)]);
  expect(await openMultipartUploads(client, s3.bucket)).toEqual([]);
  expect(await tempFiles(env.config)).toEqual([]);
  expect(await auditCount(gateway, id, 'file.stored')).toBe(1);
}

describe('pipeline with the S3 object store', { timeout: 60_000 }, () => {
  it('stores a 12 MiB + 3 byte upload as a 3-part multipart object that decrypts to the original bytes', async () => {
    const body = randomBytes(12 * MiB + 3);
    s3.proxy.resetStats();
    const [file] = await upload(gateway, alice, [{ filename: 'twelve.bin', body }]);
    await expectStoredExactly(file!.id, body);
    expect(s3.proxy.stats('CreateMultipartUpload').requests).toBe(1);
    expect(s3.proxy.stats('UploadPart').requests).toBe(3);
    expect(s3.proxy.stats('CompleteMultipartUpload').requests).toBe(1);
    // Envelope mode with the local master key file.
    expect((await gateway.files.findById(file!.id))?.keyRef).toMatch(/^local:/);
  });

  it('retries an UploadPart answered 503 within the same attempt and still stores the file byte for byte', async () => {
    const body = randomBytes(11 * MiB);
    s3.proxy.resetStats();
    s3.proxy.inject({ operation: 'UploadPart', respond: 503, times: 1 });
    const [file] = await upload(gateway, alice, [{ filename: 'flaky.bin', body }]);
    await expectStoredExactly(file!.id, body);
    expect(s3.proxy.stats('UploadPart')).toMatchObject({ injected: 1, requests: 4 });
    const row = (await gateway.files.findById(file!.id))!;
    expect(row.attempts).toBe(1);
    expect(row.error).toBeNull();
  });

  it('marks the file failed with a readable error after persistent UploadPart 500s, aborting every multipart upload and removing the temp file', async () => {
    const body = randomBytes(6 * MiB);
    s3.proxy.resetStats();
    s3.proxy.inject({ operation: 'UploadPart', respond: 500 });
    const [file] = await upload(gateway, alice, [{ filename: 'doomed.bin', body }]);
    const row = await waitForStatus(gateway, file!.id, 'failed', { workers: [worker], timeoutMs: 45_000 });
    expect(row.error).toMatch(/UploadPart/);
    expect(row.error).toMatch(/500/);
    expect(row.error).not.toMatch(/\n|at .*\(.*:\d+:\d+\)/);
    expect(row.attempts).toBe(2);
    expect(row.sha256).toBeNull();
    expect(s3.proxy.stats('CreateMultipartUpload').requests).toBe(2);
    expect(s3.proxy.stats('AbortMultipartUpload').requests).toBeGreaterThanOrEqual(2);
    // BullMQ marks the job failed once the worker's failure handling is over.
    await waitForJob(gateway, file!.id, 'failed', { workers: [worker] });
    // The temp file goes once the failure is final (the documented policy: the user uploads again).
    await expect(access(join(env.config.tempDir, file!.id))).rejects.toThrow(/ENOENT/);
    expect(await openMultipartUploads(client, s3.bucket)).toEqual([]);
    expect(await objectKeys(client, s3.bucket, objectKeyFor(file!.id))).toEqual([]);
    expect(await auditCount(gateway, file!.id, 'file.failed')).toBe(1);
    expect(await auditCount(gateway, file!.id, 'file.stored')).toBe(0);
    expect(await tempFiles(env.config)).toEqual([]);
  });
});
