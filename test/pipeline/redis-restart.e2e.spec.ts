import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesOf } from '../support/multipart.js';
import { killAllProcesses, startWorker, type TestProcess } from '../support/processes.js';
import { type RedisServer, startRedisServer } from '../support/redis-server.js';
import { createTestEnv, type TestEnv } from '../support/test-env.js';
import { createUser, type TestUser } from '../support/users.js';
import { type Gateway, sha256, startGateway, upload, waitForStatus } from './pipeline.helpers.js';

/**
 * docs/security.md item 22, the part the shared Redis cannot show: Redis restarts (here with no
 * persistence, so every key is gone) while a gateway and a worker process run. Both reconnect on their
 * own and the next upload is stored, with no restart of TESS.
 */

let redis: RedisServer;
let env: TestEnv;
let gateway: Gateway;
let worker: TestProcess;
let alice: TestUser;

beforeAll(async () => {
  redis = await startRedisServer(['--maxmemory-policy', 'noeviction']);
  env = await createTestEnv({ REDIS_URL: redis.url });
  gateway = await startGateway(env.config);
  worker = await startWorker(env.env);
  alice = await createUser(gateway.app.getHttpServer(), `alice_${env.id}`);
});

afterAll(async () => {
  await worker?.stop();
  await killAllProcesses();
  await gateway?.close();
  await env?.cleanup();
  await redis?.dispose();
});

/** Uploads one file, retrying while the gateway still answers 503 (Redis not back yet). */
async function uploadWhenAccepted(content: Buffer, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const [file] = await upload(gateway, alice, [{ filename: 'after-restart.bin', body: content }]);
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
    const [first] = await upload(gateway, alice, [{ filename: 'before.bin', body: before }]);
    expect((await waitForStatus(gateway, first!.id, 'stored', { workers: [worker] })).sha256).toBe(
      sha256(before),
    );

    await redis.stop();
    await new Promise((r) => setTimeout(r, 1_000));
    await redis.start();

    const after = bytesOf(3 * 1024 * 1024 + 5);
    const id = await uploadWhenAccepted(after, 30_000);
    const stored = await waitForStatus(gateway, id, 'stored', { workers: [worker], timeoutMs: 45_000 });
    expect(stored.sha256).toBe(sha256(after));
    expect(worker.exitStatus()).toBeUndefined();
  });
});
