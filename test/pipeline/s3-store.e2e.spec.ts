import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { objectKeyFor } from '#common';
import { MiB, sha1, sha256 } from '../support/bytes.js';
import {
  auditCount,
  tempFiles,
  upload,
  waitForJob,
  waitForStatus,
  waitForStored,
} from '../support/client.js';
import { decryptStored, objectKeys, openMultipartUploads, s3Client } from '../support/objects.js';
import { killAllProcesses, type TestProcess } from '../support/processes.js';
import type { S3rverHandle } from '../support/s3rver.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Upload -> worker process -> S3 multipart upload to s3rver (through the fault proxy), with injected
 * UploadPart failures. JOB_ATTEMPTS=2 so a persistent failure ends the job quickly.
 */

let s3: S3rverHandle;
let world: World;
let worker: TestProcess;
let client: S3Client;
let alice: TestUser;

beforeAll(async () => {
  // Exact counts of the encrypt-file job's runs; the same outage while a follower runs:
  // test/pipeline/pipelining.e2e.spec.ts.
  world = await createWorld({ store: 's3', env: { JOB_ATTEMPTS: '2', PIPELINE_MIN_BYTES: '0' } });
  s3 = world.s3!;
  worker = await world.startWorker();
  client = s3Client(s3);
  alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
});

afterEach(() => {
  s3?.proxy.clear();
});

afterAll(async () => {
  await worker?.stop();
  await killAllProcesses();
  client?.destroy();
  await world?.close();
});

async function expectStoredExactly(id: string, body: Buffer): Promise<void> {
  const row = await waitForStored(world, id, { workers: [worker] });
  expect(row).toMatchObject({
    sha1: sha1(body),
    sha256: sha256(body),
    storageDriver: 's3',
    objectKey: objectKeyFor(id),
  });
  const decrypted = await decryptStored(world.config, id);
  expect({ sha256: decrypted.sha256, bytes: decrypted.bytes }).toEqual({
    sha256: sha256(body),
    bytes: body.length,
  });
  expect(decrypted.encryptedSize).toBe(row.encryptedSize);
  expect(await objectKeys(client, s3.bucket, objectKeyFor(id))).toEqual([objectKeyFor(id)]);
  expect(await openMultipartUploads(client, s3.bucket)).toEqual([]);
  expect(await tempFiles(world.config)).toEqual([]);
  expect(await auditCount(world, id, 'file.stored')).toBe(1);
}

describe('pipeline with the S3 object store', { timeout: 60_000 }, () => {
  it('stores a 12 MiB + 3 byte upload as a 3-part multipart object that decrypts to the original bytes', async () => {
    const body = randomBytes(12 * MiB + 3);
    s3.proxy.resetStats();
    const [file] = await upload(world, alice, [{ filename: 'twelve.bin', body }]);
    await expectStoredExactly(file!.id, body);
    expect(s3.proxy.stats('CreateMultipartUpload').requests).toBe(1);
    expect(s3.proxy.stats('UploadPart').requests).toBe(3);
    expect(s3.proxy.stats('CompleteMultipartUpload').requests).toBe(1);
    // Envelope mode with the local master key file.
    expect((await world.files.findById(file!.id))?.keyRef).toMatch(/^local:/);
  });

  it('retries an UploadPart answered 503 within the same attempt and still stores the file byte for byte', async () => {
    const body = randomBytes(11 * MiB);
    s3.proxy.resetStats();
    s3.proxy.inject({ operation: 'UploadPart', respond: 503, times: 1 });
    const [file] = await upload(world, alice, [{ filename: 'flaky.bin', body }]);
    await expectStoredExactly(file!.id, body);
    expect(s3.proxy.stats('UploadPart')).toMatchObject({ injected: 1, requests: 4 });
    const row = (await world.files.findById(file!.id))!;
    expect(row.attempts).toBe(1);
    expect(row.error).toBeNull();
  });

  it('marks the file failed with a readable error after persistent UploadPart 500s, aborting every multipart upload and keeping the encrypted staging file for a retry', async () => {
    const body = randomBytes(6 * MiB);
    s3.proxy.resetStats();
    s3.proxy.inject({ operation: 'UploadPart', respond: 500 });
    const [file] = await upload(world, alice, [{ filename: 'doomed.bin', body }]);
    const row = await waitForStatus(world, file!.id, 'failed', { workers: [worker], timeoutMs: 45_000 });
    expect(row.error).toMatch(/UploadPart/);
    expect(row.error).toMatch(/500/);
    expect(row.error).not.toMatch(/\n|at .*\(.*:\d+:\d+\)/);
    expect(row.attempts).toBe(2);
    expect(row.sha256).toBeNull();
    expect(s3.proxy.stats('CreateMultipartUpload').requests).toBe(2);
    expect(s3.proxy.stats('AbortMultipartUpload').requests).toBeGreaterThanOrEqual(2);
    // BullMQ marks the job failed once the worker's failure handling is over.
    await waitForJob(world, file!.id, 'failed', { workers: [worker] });
    // The encrypted staging file stays after the final failure (until TEMP_MAX_AGE), so that an admin
    // can retry the job (the documented policy); deleting the file removes it.
    await access(join(world.config.tempDir, file!.id));
    expect(await openMultipartUploads(client, s3.bucket)).toEqual([]);
    expect(await objectKeys(client, s3.bucket, objectKeyFor(file!.id))).toEqual([]);
    expect(await auditCount(world, file!.id, 'file.failed')).toBe(1);
    expect(await auditCount(world, file!.id, 'file.stored')).toBe(0);
    expect(await tempFiles(world.config)).toEqual([file!.id]);
  });
});
