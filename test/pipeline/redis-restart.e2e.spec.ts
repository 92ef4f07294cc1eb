import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../support/bytes.js';
import { upload, waitForStatus } from '../support/client.js';
import { bytesOf } from '../support/multipart.js';
import { killAllProcesses, type TestProcess } from '../support/processes.js';
import type { RedisServer } from '../support/redis-server.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * docs/security.md item 22, the part the shared Redis cannot show: Redis restarts (here with no
 * persistence, so every key is gone) while a gateway and a worker process run. Both reconnect on their
 * own and the next upload is stored, with no restart of TESS.
 */

let redis: RedisServer;
let world: World;
let worker: TestProcess;
let alice: TestUser;

beforeAll(async () => {
  world = await createWorld({ privateRedis: ['--maxmemory-policy', 'noeviction'] });
  redis = world.redisServer!;
  worker = await world.startWorker();
  alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
});

afterAll(async () => {
  await worker?.stop();
  await killAllProcesses();
  await world?.close();
  await redis?.dispose();
});

/** Uploads one file, retrying while the gateway still answers 503 (Redis not back yet). */
async function uploadWhenAccepted(content: Buffer, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const [file] = await upload(world, alice, [{ filename: 'after-restart.bin', body: content }]);
      return file!.id;
    } catch (error) {
      if (!/answered 503/.test((error as Error).message) || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

describe('Redis restarts under a running gateway and worker', { timeout: 90_000 }, () => {
  it('stores a file before, and the next upload after, without restarting TESS', async () => {
    const before = bytesOf(64 * 1024);
    const [first] = await upload(world, alice, [{ filename: 'before.bin', body: before }]);
    expect((await waitForStatus(world, first!.id, 'stored', { workers: [worker] })).sha256).toBe(
      sha256(before),
    );

    await redis.stop();
    await new Promise((r) => setTimeout(r, 1_000));
    await redis.start();

    const after = bytesOf(3 * 1024 * 1024 + 5);
    const id = await uploadWhenAccepted(after, 30_000);
    const stored = await waitForStatus(world, id, 'stored', { workers: [worker], timeoutMs: 45_000 });
    expect(stored.sha256).toBe(sha256(after));
    expect(worker.exitStatus()).toBeUndefined();
  });
});
