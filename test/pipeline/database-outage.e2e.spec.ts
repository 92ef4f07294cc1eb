import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, sha256 } from '../support/bytes.js';
import { auditCount, tempFiles, upload, waitFor, waitForStored } from '../support/client.js';
import { bytesOf, postMultipart } from '../support/multipart.js';
import { objectKeys, partsOnS3rver, s3Client } from '../support/objects.js';
import type { PostgresServer } from '../support/postgres-server.js';
import { killAllProcesses, type TestProcess } from '../support/processes.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, objectKey, type World } from '../support/world.js';

/**
 * docs/security.md item 34: PostgreSQL restarted under a running gateway process and worker process, on a
 * private cluster (test/support/postgres-server.ts; the shared server is never stopped). Uploads answer 503
 * with a readable message while it is down and leave nothing behind, /readyz names the database, the
 * worker pauses and resumes by itself, a job caught mid-run is stored exactly once afterwards, and neither
 * process exits. A worker whose file-lock session is killed (pg_terminate_backend) stops and its retry
 * converges to one stored object.
 */

let world: World;
let pgServer: PostgresServer;
let alice: TestUser;
let worker: TestProcess;

const WORKER_ENV = { S3_QUEUE_SIZE: '1', WORKER_CONCURRENCY: '1', LOG_LEVEL: 'info' };

beforeAll(async () => {
  // The encrypt-file run under outages and a lost lock; a follower's lost lock: pipelining.e2e.spec.ts.
  world = await createWorld({
    store: 's3',
    gateway: 'process',
    privatePostgres: true,
    env: { PIPELINE_MIN_BYTES: '0' },
  });
  pgServer = world.postgresServer!;
  alice = await createUser(world.base, `alice_${world.id}`);
  worker = await world.startWorker({ env: WORKER_ENV });
}, 90_000);

afterAll(async () => {
  await killAllProcesses();
  await world?.close();
});

const gateway = () => world.gatewayProcesses[0]!;
const workerHealth = () => `http://127.0.0.1:${/Health endpoint on port (\d+)/.exec(worker.output())![1]}`;

async function json(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Rows in the files table, read once the database is back. */
async function fileIds(): Promise<string[]> {
  const rows: Array<{ id: string }> = await world.dataSource.query('SELECT id FROM files');
  return rows.map((r) => r.id);
}

/** Uploads `body` with UploadPart slowed down and resolves once its job is mid-upload. */
async function uploadUntilMidJob(filename: string, body: Buffer): Promise<{ id: string }> {
  const s3 = world.s3!;
  s3.proxy.delay('UploadPart', 700);
  const [file] = await upload(world, alice, [{ filename, body }]);
  await waitFor(
    'the job to be mid-upload',
    async () =>
      (await world.files.findById(file!.id))?.status === 'processing' && (await partsOnS3rver(s3)) > 0,
    { intervalMs: 25, workers: [worker] },
  );
  return file!;
}

async function whenBack<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  return waitFor(what, async () => attempt().catch(() => undefined), { timeoutMs: 30_000, intervalMs: 250 });
}

describe('PostgreSQL outages', { timeout: 180_000 }, () => {
  it('answers 503 with a readable message while it is down, keeps nothing, and recovers by itself', async () => {
    const before = await fileIds();
    // An upload streaming in when the database goes away: its rows cannot be written.
    const body = bytesOf(4 * MiB + 3);
    const streaming = postMultipart(`${world.base}/api/v1/uploads`, [{ filename: 'mid-outage.bin', body }], {
      headers: alice.auth,
      pauseAfter: { bytes: MiB, until: () => pgServer.stop() },
    });
    const midUpload = await streaming;
    expect(midUpload.status).toBe(503);
    expect(JSON.parse(midUpload.body)).toMatchObject({
      statusCode: 503,
      message: expect.stringMatching(/database is unavailable.*nothing was changed or stored/),
    });
    expect(await tempFiles(world.config)).toEqual([]);

    // While it is down: a new upload (its token cannot be checked), a read, and readiness.
    const refused = await postMultipart(
      `${world.base}/api/v1/uploads`,
      [{ filename: 'x.bin', body: bytesOf(10) }],
      {
        headers: alice.auth,
      },
    );
    expect({ status: refused.status, message: JSON.parse(refused.body).message }).toEqual({
      status: 503,
      message: expect.stringMatching(/database is unavailable/),
    });
    const list = await json(`${world.base}/api/v1/files`, { headers: alice.auth });
    expect(list.status).toBe(503);
    const ready = await json(`${world.base}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toMatchObject({ database: expect.stringMatching(/^unavailable/), redis: 'ok' });
    const workerReady = await json(`${workerHealth()}/readyz`);
    expect(workerReady.status).toBe(503);
    expect(workerReady.body.checks).toMatchObject({ database: expect.stringMatching(/^unavailable/) });
    expect(await tempFiles(world.config)).toEqual([]);

    await pgServer.start();
    // The pools reconnect by themselves: the same processes accept and store the next upload.
    await whenBack(
      'the gateway to be ready',
      async () => (await json(`${world.base}/readyz`)).status === 200,
    );
    const [next] = await upload(world, alice, [{ filename: 'after.bin', body }]);
    expect((await waitForStored(world, next!.id, { workers: [worker] })).sha256).toBe(sha256(body));
    expect(await fileIds()).toEqual([...before, next!.id]);
    expect(gateway().exitStatus()).toBeUndefined();
    expect(worker.exitStatus()).toBeUndefined();
  });

  it('pauses the worker during a mid-job outage and stores the file exactly once when it is back', async () => {
    const s3 = world.s3!;
    const body = bytesOf(12 * MiB + 11);
    const file = await uploadUntilMidJob('mid-job.bin', body);
    await pgServer.stop();
    await worker.waitForOutput(/pausing job intake/, 30_000);
    await sleep(2_000);
    s3.proxy.clear();
    await pgServer.start();
    await worker.waitForOutput(/resuming job intake/, 30_000);
    const row = await waitForStored(world, file.id, { workers: [worker], timeoutMs: 60_000 });
    expect(row.sha256).toBe(sha256(body));
    const client = s3Client(s3);
    try {
      expect(await objectKeys(client, s3.bucket, objectKey(file.id))).toEqual([objectKey(file.id)]);
    } finally {
      client.destroy();
    }
    expect(await auditCount(world, file.id, 'file.stored')).toBe(1);
    // The outage spent no attempt: the run it interrupted (its lock session died with the server) was put
    // back as delayed, and only the run that stored the file counts.
    const job = await world.queue.getJob(file.id);
    expect(job?.attemptsMade).toBe(1);
    expect(worker.exitStatus()).toBeUndefined();
    expect(gateway().exitStatus()).toBeUndefined();
  });

  it('stops a run whose lock session is killed with pg_terminate_backend; the retry stores the file once', async () => {
    const s3 = world.s3!;
    const body = bytesOf(12 * MiB + 7);
    const file = await uploadUntilMidJob('lock-lost.bin', body);
    // The worker's lock session: the backend holding an advisory lock in this database.
    const killed: Array<{ pid: number }> = await world.dataSource.query(
      `SELECT pg_terminate_backend(pid), pid FROM pg_locks
       WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    );
    expect(killed).toHaveLength(1);
    await worker.waitForOutput(/Lost the lock on encrypt-file:/, 30_000);
    s3.proxy.clear();
    const row = await waitForStored(world, file.id, { workers: [worker], timeoutMs: 60_000 });
    expect(row.sha256).toBe(sha256(body));
    expect(await auditCount(world, file.id, 'file.stored')).toBe(1);
    // The stopped run is one failed attempt (the database was up: a real lost lock), the retry the second.
    const job = await world.queue.getJob(file.id);
    expect(job?.attemptsMade).toBe(2);
    expect(worker.exitStatus()).toBeUndefined();
  });

  it('commits a stored row only through a session that still holds the file lock (the fence)', async () => {
    const [file] = await upload(world, alice, [{ filename: 'fence.bin', body: bytesOf(100) }]);
    const row = await waitForStored(world, file!.id, { workers: [worker] });
    await world.dataSource.query("UPDATE files SET status = 'processing' WHERE id = $1", [row.id]);
    const facts = {
      sha1: row.sha1!,
      sha256: row.sha256!,
      encryptedSize: row.encryptedSize!,
      storageDriver: row.storageDriver!,
      objectKey: row.objectKey!,
      keyRef: row.keyRef!,
      wrappedKey: row.wrappedKey,
      detectedType: row.detectedType!,
      typeWarning: row.typeWarning,
      scannedWith: row.scannedWith,
    };
    const key = `tess:encrypt-file:${row.id}`;
    const holder = new pg.Client({ connectionString: world.config.database.url });
    await holder.connect();
    try {
      const [{ pid }] = (await holder.query('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
      // Not (or no longer) holding it: nothing is committed.
      expect(await world.files.markStored(row.id, facts, { pid, key })).toBe(false);
      await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
      expect(await world.files.markStored(row.id, facts, { pid: pid + 100_000, key })).toBe(false);
      // Committed: the file is (still) its own version 1.
      expect(await world.files.markStored(row.id, facts, { pid, key })).toEqual({
        fileId: row.id,
        version: 1,
      });
    } finally {
      await holder.end();
    }
  });
});
