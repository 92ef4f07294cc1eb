import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MiB, sha1, sha256 } from '../support/bytes.js';
import { tempFiles, upload, waitFor, waitForStored } from '../support/client.js';
import { decryptStored } from '../support/objects.js';
import { killAllProcesses, type TestProcess } from '../support/processes.js';
import { type SecretsManagerFake, startSecretsManagerFake } from '../support/secrets-manager-fake.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * The worker process with KEY_PROVIDER=aws-secrets-manager against the test-only Secrets Manager fake
 * (the real SDK client, endpoint override and SigV4 signing): envelope mode with the master key in a
 * secret, and the opt-in per-file-secret mode.
 */

const MASTER_KEY_SECRET_ID = 'tess-test/master-key';
/** The SDK's default credential chain reads these (in the worker's environment and in this process). */
const AWS_ENV = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };

let fake: SecretsManagerFake;

beforeAll(async () => {
  fake = await startSecretsManagerFake();
  for (const [name, value] of Object.entries(AWS_ENV)) vi.stubEnv(name, value);
});

afterAll(async () => {
  await killAllProcesses();
  vi.unstubAllEnvs();
  await fake?.close();
});

function secretsManagerWorld(mode: 'envelope' | 'per-file-secret'): Promise<World> {
  return createWorld({ secretsManager: { mode, masterKeySecretId: MASTER_KEY_SECRET_ID, fake } });
}

describe('envelope mode with the master key in Secrets Manager', { timeout: 60_000 }, () => {
  let world: World;
  let alice: TestUser;
  let worker: TestProcess | undefined;

  beforeAll(async () => {
    world = await secretsManagerWorld('envelope');
    alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
  });

  afterAll(async () => {
    await worker?.stop();
    await world?.close();
  });

  it('stores files under a master key created in Secrets Manager, fetched once and cached, and they decrypt', async () => {
    // Created once, by the gateway's first audit event (the registration in beforeAll).
    expect(fake.calls.CreateSecret).toBe(1);
    fake.resetCalls();
    worker = await world.startWorker({ env: AWS_ENV, name: 'worker (aws-sm)' });
    const bodies = [randomBytes(3 * MiB + 5), randomBytes(1000)];
    const files = await upload(
      world,
      alice,
      bodies.map((body, i) => ({ filename: `sm-${i}.bin`, body })),
    );
    for (const [i, file] of files.entries()) {
      const row = await waitForStored(world, file.id, { workers: [worker] });
      expect(row.sha256).toBe(sha256(bodies[i]!));
      expect(row.keyRef).toBe(
        `aws-sm:${MASTER_KEY_SECRET_ID}:${fake.secret(MASTER_KEY_SECRET_ID)?.versions[0]?.versionId}`,
      );
      expect(row.wrappedKey).toHaveLength(60);
    }
    // The gateway created the master key before this test, at its first audit event (the registration:
    // audit links are keyed from the master key, docs/security.md item 33), and keeps it cached. The worker
    // reads it once, at start (it anchors the audit chains), and uses its cache for every file.
    expect({ get: fake.calls.GetSecretValue, create: fake.calls.CreateSecret }).toEqual({
      get: 1,
      create: 0,
    });
    expect(fake.secret(MASTER_KEY_SECRET_ID)?.versions).toHaveLength(1);

    for (const [i, file] of files.entries()) {
      const decrypted = await decryptStored(world.config, file.id);
      expect(decrypted.sha256).toBe(sha256(bodies[i]!));
      expect(decrypted.header.keyRef).toMatch(/^aws-sm:/);
    }
    await worker.stop();
    worker = undefined;
  });

  it('retries a throttled Secrets Manager read in a fresh worker and still stores the file', async () => {
    // A fresh worker reads the master key at start (its first audit anchor): that read is throttled.
    fake.resetCalls();
    fake.failNext(2, 'ThrottlingException', 400, 'GetSecretValue');
    worker = await world.startWorker({ env: AWS_ENV, name: 'worker (throttled)' });
    // Two throttled answers, then the successful read: retried by the key source, not fatal.
    await waitFor('the worker to read the master key', async () => fake.calls.GetSecretValue >= 3, {
      workers: [worker],
    });
    const body = randomBytes(2 * MiB + 1);
    const [file] = await upload(world, alice, [{ filename: 'throttled.bin', body }]);
    const row = await waitForStored(world, file!.id, { workers: [worker] });
    expect(row.sha256).toBe(sha256(body));
    expect(row.attempts).toBe(1);
    expect(row.keyRef).toMatch(new RegExp(`^aws-sm:${MASTER_KEY_SECRET_ID}:`));
    // The job needed no read of its own (cached) and stored the file in its first attempt.
    expect(fake.calls.GetSecretValue).toBe(3);
    expect(fake.calls.CreateSecret).toBe(0);
    expect((await decryptStored(world.config, file!.id)).sha256).toBe(sha256(body));
    expect(await tempFiles(world.config)).toEqual([]);
    await worker.stop();
    worker = undefined;
  });
});

describe('per-file-secret mode', { timeout: 60_000 }, () => {
  let world: World;
  let alice: TestUser;
  let worker: TestProcess;

  beforeAll(async () => {
    world = await secretsManagerWorld('per-file-secret');
    alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
    worker = await world.startWorker({ env: AWS_ENV, name: 'worker (per-file-secret)' });
  });

  afterAll(async () => {
    await worker?.stop();
    await world?.close();
  });

  it('keeps each file key and its hashes in its own secret tess/files/<id>, and the object decrypts with it', async () => {
    const body = randomBytes(MiB + 77);
    const [file] = await upload(world, alice, [{ filename: 'own-secret.bin', body }]);
    const row = await waitForStored(world, file!.id, { workers: [worker] });
    const name = `tess/files/${file!.id}`;
    expect(row).toMatchObject({ keyRef: `secret:${name}`, wrappedKey: null, sha256: sha256(body) });

    const secret = fake.secret(name);
    expect(secret?.deleted).toBe(false);
    const current = secret?.versions.find((v) => v.stages.includes('AWSCURRENT'));
    const content = JSON.parse(current?.secretString ?? '{}');
    expect(content).toEqual({ dataKey: expect.any(String), sha1: sha1(body), sha256: sha256(body) });
    expect(Buffer.from(content.dataKey, 'base64')).toHaveLength(32);

    const decrypted = await decryptStored(world.config, file!.id);
    expect(decrypted.sha256).toBe(sha256(body));
    expect(decrypted.header.wrappedKey).toHaveLength(0);
    expect(await tempFiles(world.config)).toEqual([]);
  });
});
