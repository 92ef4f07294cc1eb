import { unlink } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthServer } from '../../apps/crypto-worker/src/health/health.server.js';
import { STAGED_DATA_GONE } from '../../apps/crypto-worker/src/reconcile/job-reconciler.service.js';
import { MiB, sha256 } from '../support/bytes.js';
import { auditCount, upload, waitFor, waitForStatus } from '../support/client.js';
import { bytesOf } from '../support/multipart.js';
import { listObjects } from '../support/objects.js';
import { killAllProcesses, type TestProcess } from '../support/processes.js';
import type { RedisServer } from '../support/redis-server.js';
import { stagedPath } from '../support/staging.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, objectKey, type World } from '../support/world.js';

/**
 * docs/security.md item 32: PostgreSQL's rows are the truth, BullMQ only delivers them. Files are uploaded
 * while no worker runs; then their jobs are lost every way Redis loses them (FLUSHDB, a restart without
 * persistence, a job removed by hand) on a private redis-server, one row is left `processing` as by a
 * worker that died mid-job, and one file's staged data is deleted. Workers started afterwards (a process
 * and an in-process one: two reconcilers, one lock) store every file exactly once and fail the one whose
 * data is gone, with a readable reason.
 */

const GRACE_MS = 2_000;
const INTERVAL_MS = 1_000;

let world: World;
let redis: RedisServer;
let alice: TestUser;
let worker: TestProcess | undefined;

beforeAll(async () => {
  world = await createWorld({
    privateRedis: ['--maxmemory-policy', 'noeviction'],
    env: { RECONCILE_GRACE: `${GRACE_MS}ms`, RECONCILE_INTERVAL: `${INTERVAL_MS}ms` },
  });
  redis = world.redisServer!;
  alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
}, 60_000);

afterAll(async () => {
  await worker?.stop();
  await killAllProcesses();
  await world?.close();
});

/** tess_reconciled_jobs_total{outcome} as one worker's /metrics reports it. */
async function reconciled(base: string, outcome: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`tess_reconciled_jobs_total{outcome="${outcome}"`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('jobs lost by Redis are re-created from the rows', { timeout: 120_000 }, () => {
  it('stores every queued and processing file exactly once, and fails the one whose staged data is gone', async () => {
    const bodies = [bytesOf(0), bytesOf(1), bytesOf(64 * 1024), bytesOf(3 * MiB + 5), bytesOf(MiB)];
    const first = await upload(
      world,
      alice,
      bodies.slice(0, 3).map((body, i) => ({ filename: `first-${i}.bin`, body })),
    );
    // Lost by FLUSHDB (the private server: nothing else lives there).
    const admin = new Redis(redis.url);
    await admin.flushdb();
    admin.disconnect();
    expect(await world.queue.getJob(first[0]!.id)).toBeUndefined();

    const second = await upload(world, alice, [
      ...bodies.slice(3).map((body, i) => ({ filename: `second-${i}.bin`, body })),
      { filename: 'gone.bin', body: bytesOf(2048) },
    ]);
    const gone = second.at(-1)!.id;
    const files = [...first, ...second.slice(0, -1)];
    // A worker died mid-job (its row says processing) and its job is gone too.
    await world.dataSource.query(
      "UPDATE files SET status = 'processing', processing_started_at = now(), attempts = 1 WHERE id = $1",
      [files[3]!.id],
    );
    await unlink(stagedPath(world.config, gone));
    // Lost by a restart without persistence.
    await redis.stop();
    await redis.start();
    for (const file of [...files, { id: gone }]) expect(await world.queue.getJob(file.id)).toBeUndefined();
    // The rows still say queued (and processing): only they know these files.
    expect((await world.files.listStale(0, 100)).map((r) => r.id).sort()).toEqual(
      [...files.map((f) => f.id), gone].sort(),
    );

    const started = Date.now();
    worker = await world.startWorker({ env: { LOG_LEVEL: 'info' } });
    await world.startInProcessWorker();
    for (const [i, file] of files.entries()) {
      const row = await waitForStatus(world, file.id, 'stored', { workers: [worker], timeoutMs: 60_000 });
      expect({ i, sha256: row.sha256 }).toEqual({ i, sha256: sha256(bodies[i]!) });
    }
    const failed = await waitForStatus(world, gone, 'failed', { workers: [worker] });
    const elapsed = Date.now() - started;
    expect(failed.error).toBe(STAGED_DATA_GONE);
    expect(await auditCount(world, gone, 'file.failed')).toBe(1);

    // Exactly once: one object per stored file and none for the failed one, one stored event each, and
    // every re-created job ran once.
    expect(await listObjects(world)).toEqual(files.map((f) => objectKey(f.id)).sort());
    for (const file of files) {
      expect(await auditCount(world, file.id, 'file.stored')).toBe(1);
      const job = await waitFor(`job ${file.id} finished`, async () => {
        const found = await world.queue.getJob(file.id);
        return found?.finishedOn ? found : undefined;
      });
      expect({ id: file.id, attemptsMade: job.attemptsMade }).toEqual({ id: file.id, attemptsMade: 1 });
    }

    // Counted where it happened: the two workers together re-enqueued five and failed one.
    const port = Number(/Health endpoint on port (\d+)/.exec(worker.output())?.[1]);
    const bases = [`http://127.0.0.1:${port}`, `http://127.0.0.1:${world.worker!.get(HealthServer).port()}`];
    const sum = async (outcome: string) =>
      (await Promise.all(bases.map((b) => reconciled(b, outcome)))).reduce((a, b) => a + b, 0);
    expect(await sum('requeued')).toBe(files.length);
    expect(await sum('failed')).toBe(1);
    // Within the grace period plus a pass or two (and a worker's start-up).
    console.log(`lost jobs: ${files.length} stored, 1 failed ${elapsed} ms after the workers started`);
    expect(elapsed).toBeLessThan(GRACE_MS + 3 * INTERVAL_MS + 15_000);
    expect(worker.exitStatus()).toBeUndefined();
  });
});
