import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { QueueEvents } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bullPrefix, objectKeyFor, QUEUE_NAMES } from '#common';
import { MiB, sha256 } from '../support/bytes.js';
import { auditCount, tempFiles, upload, waitFor, waitForStored } from '../support/client.js';
import {
  decryptStored,
  objectKeys,
  openMultipartUploads,
  partsOnS3rver,
  s3Client,
} from '../support/objects.js';
import { killAllProcesses, type TestProcess } from '../support/processes.js';
import type { S3rverHandle } from '../support/s3rver.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Worker processes killed or stopped in the middle of an S3 multipart upload. UploadPart is slowed down by
 * the proxy so a 20 MiB job (5 parts, 2 in flight) takes a few seconds; the lock duration is short so a
 * dead worker's job is detected as stalled within seconds.
 */

const SIZE = 20 * MiB;
const WORKER_ENV = { WORKER_LOCK_DURATION: '4s', S3_QUEUE_SIZE: '2', WORKER_CONCURRENCY: '1' };

let s3: S3rverHandle;
let world: World;
let client: S3Client;
let alice: TestUser;
let events: QueueEvents;

beforeAll(async () => {
  world = await createWorld({ store: 's3' });
  s3 = world.s3!;
  client = s3Client(s3);
  alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
  const connection = { url: world.config.redis.url };
  const prefix = bullPrefix(world.config.redis.prefix);
  events = new QueueEvents(QUEUE_NAMES.crypto, { connection, prefix });
  await events.waitUntilReady();
});

afterEach(async () => {
  s3?.proxy.clear();
  await killAllProcesses();
});

afterAll(async () => {
  await killAllProcesses();
  await events?.close();
  client?.destroy();
  await world?.close();
});

/** Waits until the file is being processed and at least one of its parts is on s3rver's disk. */
async function waitUntilMidUpload(id: string, worker: TestProcess): Promise<void> {
  await waitFor(
    `file ${id} to be processing with a part uploaded`,
    async () => {
      const row = await world.files.findById(id);
      return row?.status === 'processing' && (await partsOnS3rver(s3)) > 0;
    },
    { intervalMs: 25, workers: [worker] },
  );
}

async function expectStoredOnce(id: string, body: Buffer, workers: TestProcess[]): Promise<void> {
  const row = await waitForStored(world, id, { workers });
  expect(row.sha256).toBe(sha256(body));
  expect(await objectKeys(client, s3.bucket, 'objects/')).toContain(objectKeyFor(id));
  expect(await objectKeys(client, s3.bucket, objectKeyFor(id))).toEqual([objectKeyFor(id)]);
  // Decrypted with the key the row records: the object is the one the row describes.
  const decrypted = await decryptStored(world.config, id, {
    rowKey: { keyRef: row.keyRef!, wrappedKey: row.wrappedKey! },
  });
  expect({ sha256: decrypted.sha256, bytes: decrypted.bytes }).toEqual({
    sha256: sha256(body),
    bytes: body.length,
  });
  expect(decrypted.header.wrappedKey.equals(row.wrappedKey!)).toBe(true);
  expect(decrypted.encryptedSize).toBe(row.encryptedSize);
  expect(await openMultipartUploads(client, s3.bucket)).toEqual([]);
  expect(await tempFiles(world.config)).toEqual([]);
  expect(await auditCount(world, id, 'file.stored')).toBe(1);
}

describe('worker crashes and shutdowns', { timeout: 60_000 }, () => {
  it('recovers a job whose worker was killed with SIGKILL mid-upload: another worker stores the file exactly once', async () => {
    s3.proxy.delay('UploadPart', 1_000);
    const workerA = await world.startWorker({ env: WORKER_ENV, name: 'worker A' });
    const body = randomBytes(SIZE);
    const [file] = await upload(world, alice, [{ filename: 'crash.bin', body }]);
    await waitUntilMidUpload(file!.id, workerA);

    workerA.signal('SIGKILL');
    expect(await workerA.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // What the crash left: a processing row, the temp file, an open multipart upload with parts.
    expect((await world.files.findById(file!.id))?.status).toBe('processing');
    expect(await tempFiles(world.config)).toEqual([file!.id]);
    expect(await openMultipartUploads(client, s3.bucket)).toHaveLength(1);

    s3.proxy.clear();
    const workerB = await world.startWorker({ env: WORKER_ENV, name: 'worker B' });
    await expectStoredOnce(file!.id, body, [workerA, workerB]);
    const row = (await world.files.findById(file!.id))!;
    expect(row.attempts).toBe(2);
    expect(workerB.output()).toMatch(new RegExp(`file ${file!.id}: stored`));
    expect(await workerB.stop()).toEqual({ code: 0, signal: null });
  });

  it('finishes the active job on SIGTERM before exiting with code 0', async () => {
    s3.proxy.delay('UploadPart', 700);
    const worker = await world.startWorker({
      env: { ...WORKER_ENV, WORKER_SHUTDOWN_TIMEOUT: '60s' },
      name: 'draining worker',
    });
    const body = randomBytes(SIZE);
    const [file] = await upload(world, alice, [{ filename: 'drain.bin', body }]);
    await waitUntilMidUpload(file!.id, worker);

    worker.signal('SIGTERM');
    const exit = await worker.waitForExit(30_000);
    // Checked at the moment the process is gone: nothing is left for anyone else to finish.
    const row = (await world.files.findById(file!.id))!;
    expect({ status: row.status, error: row.error, exit }).toEqual({
      status: 'stored',
      error: null,
      exit: { code: 0, signal: null },
    });
    expect(worker.output()).toMatch(/Shutting down/);
    expect(row.attempts).toBe(1);
    await expectStoredOnce(file!.id, body, [worker]);
  });

  it('keeps a worker frozen past its lock and the worker that took over its job from both writing: the file is stored once, consistently', async () => {
    s3.proxy.delay('UploadPart', 1_000);
    const workerA = await world.startWorker({ env: WORKER_ENV, name: 'worker A (frozen)' });
    const body = randomBytes(SIZE);
    const [file] = await upload(world, alice, [{ filename: 'frozen.bin', body }]);
    await waitUntilMidUpload(file!.id, workerA);

    // A stops renewing its lock but stays alive (a long GC pause, a frozen VM, a Redis partition).
    workerA.signal('SIGSTOP');
    let workerB: TestProcess | undefined;
    try {
      workerB = await world.startWorker({ env: WORKER_ENV, name: 'worker B' });
      await waitFor(
        'BullMQ to hand the stalled job to worker B',
        async () => {
          const job = await world.queue.getJob(file!.id);
          return job !== undefined && job.stalledCounter >= 1 && (await job.getState()) === 'active';
        },
        { workers: [workerA, workerB], timeoutMs: 20_000 },
      );
      s3.proxy.clear();
    } finally {
      workerA.signal('SIGCONT');
    }
    await expectStoredOnce(file!.id, body, [workerA, workerB]);
    const row = (await world.files.findById(file!.id))!;
    expect({ status: row.status, error: row.error }).toEqual({ status: 'stored', error: null });
    expect(await workerB.stop()).toEqual({ code: 0, signal: null });
    expect(await workerA.stop()).toEqual({ code: 0, signal: null });
  });

  it('runs a duplicate job delivered while the original is still uploading only after it, as a no-op', async () => {
    s3.proxy.delay('UploadPart', 700);
    const worker = await world.startWorker({
      // The original run here is the encrypt-file job itself (with a follower, that job is the no-op after
      // it: test/pipeline/pipelining.e2e.spec.ts), so this worker follows no upload even with
      // TEST_PIPELINE_MIN_BYTES set.
      env: { ...WORKER_ENV, WORKER_CONCURRENCY: '2', PIPELINE_MIN_BYTES: '0' },
      name: 'worker (concurrency 2)',
    });
    const body = randomBytes(SIZE);
    const [file] = await upload(world, alice, [{ filename: 'twice.bin', body }]);
    await waitUntilMidUpload(file!.id, worker);
    const { ownerId } = (await world.files.findById(file!.id))!;

    const duplicate = await world.queue.add(
      'encrypt-file',
      { fileId: file!.id, ownerId },
      { jobId: `dup-${file!.id}`, attempts: 1 },
    );
    const result = await duplicate.waitUntilFinished(events, 30_000);
    expect(result).toMatchObject({ fileId: file!.id, sha256: sha256(body), skipped: true });
    const original = (await world.queue.getJob(file!.id))!;
    expect(await original.getState()).toBe('completed');
    expect(original.returnvalue).toMatchObject({ sha256: sha256(body) });
    expect(original.returnvalue.skipped).toBeUndefined();
    await expectStoredOnce(file!.id, body, [worker]);
    expect((await world.files.findById(file!.id))!.attempts).toBe(1);
    expect(await worker.stop()).toEqual({ code: 0, signal: null });
  });
});
