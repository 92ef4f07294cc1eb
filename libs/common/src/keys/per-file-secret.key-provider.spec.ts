import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FAKE_AWS,
  type SecretsManagerFake,
  startSecretsManagerFake,
} from '../../../../test/support/secrets-manager-fake.js';
import { KeyUnwrapError, type WrappedDataKey } from './key-provider.js';
import {
  PerFileSecretKeyProvider,
  type PerFileSecretKeyProviderOptions,
} from './per-file-secret.key-provider.js';

const hashes = {
  sha1: 'da39a3ee5e6b4b0d3255bfef95601890afd80709',
  sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
};

describe('PerFileSecretKeyProvider (real SDK client against the Secrets Manager fake)', () => {
  let fake: SecretsManagerFake;
  const providers: PerFileSecretKeyProvider[] = [];

  beforeEach(async () => {
    fake = await startSecretsManagerFake();
  });
  afterEach(async () => {
    for (const provider of providers.splice(0)) await provider.close();
    await fake.close();
  });

  const makeProvider = (options: Partial<PerFileSecretKeyProviderOptions> = {}): PerFileSecretKeyProvider => {
    const provider = new PerFileSecretKeyProvider({
      ...FAKE_AWS,
      endpoint: fake.endpoint,
      retry: { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
      ...options,
    });
    providers.push(provider);
    return provider;
  };
  const secretJson = (name: string): Record<string, string> => {
    const versions = fake.secret(name)!.versions;
    const current = versions.find((v) => v.stages.includes('AWSCURRENT'))!;
    return JSON.parse(current.secretString!) as Record<string, string>;
  };

  it('creates secret <prefix>/files/<fileId> holding the data key; keyRef secret:<name>, no wrapped key', async () => {
    const provider = makeProvider();
    const fileId = randomUUID();

    const created = await provider.createDataKey(fileId);

    expect(provider.mode).toBe('per-file-secret');
    expect(created.keyRef).toBe(`secret:tess/files/${fileId}`);
    expect(created.wrappedKey).toHaveLength(0);
    expect(created.dataKey).toHaveLength(32);
    expect(secretJson(`tess/files/${fileId}`)).toEqual({ dataKey: created.dataKey.toString('base64') });
  });

  it('unwraps by reading the secret, retrying throttled reads', async () => {
    const provider = makeProvider();
    const fileId = randomUUID();
    const created = await provider.createDataKey(fileId);
    fake.failNext(2, 'ThrottlingException', 400, 'GetSecretValue');

    const key = await provider.unwrapDataKey(fileId, created);

    expect(key.equals(created.dataKey)).toBe(true);
    expect(fake.calls.GetSecretValue).toBe(3);
  });

  it('retries a throttled CreateSecret without creating two secrets or losing the key', async () => {
    const provider = makeProvider();
    const fileId = randomUUID();
    fake.failNext(2, 'ThrottlingException', 400, 'CreateSecret');

    const created = await provider.createDataKey(fileId);

    expect(fake.calls.CreateSecret).toBe(3);
    expect((await provider.unwrapDataKey(fileId, created)).equals(created.dataKey)).toBe(true);
  });

  it('returns the existing key when the job re-runs createDataKey for the same file', async () => {
    const provider = makeProvider();
    const fileId = randomUUID();
    const first = await provider.createDataKey(fileId);
    const second = await provider.createDataKey(fileId);
    expect(second.dataKey.equals(first.dataKey)).toBe(true);
    expect(fake.secret(`tess/files/${fileId}`)?.versions).toHaveLength(1);
  });

  it('records the hashes with PutSecretValue once, keeping the data key', async () => {
    const provider = makeProvider();
    const fileId = randomUUID();
    const created = await provider.createDataKey(fileId);

    await provider.recordHashes(fileId, created, hashes);
    await provider.recordHashes(fileId, created, hashes);

    expect(secretJson(`tess/files/${fileId}`)).toEqual({
      dataKey: created.dataKey.toString('base64'),
      ...hashes,
    });
    expect(fake.calls.PutSecretValue).toBe(1);
    expect((await provider.unwrapDataKey(fileId, created)).equals(created.dataKey)).toBe(true);
  });

  it('rejects hashes that are not lowercase hex of the right length', async () => {
    const provider = makeProvider();
    const fileId = randomUUID();
    const created = await provider.createDataKey(fileId);
    await expect(provider.recordHashes(fileId, created, { ...hashes, sha1: 'nope' })).rejects.toThrow(
      /lowercase hex/,
    );
  });

  it('destroys the secret at once, idempotently; the key is then gone', async () => {
    const provider = makeProvider();
    const fileId = randomUUID();
    const created = await provider.createDataKey(fileId);

    await provider.destroyDataKey(fileId, created);
    await provider.destroyDataKey(fileId, created);

    expect(fake.secret(`tess/files/${fileId}`)).toBeUndefined();
    expect(fake.calls.DeleteSecret).toBe(2);
    await expect(provider.unwrapDataKey(fileId, created)).rejects.toMatchObject({ reason: 'key-not-found' });
  });

  it("refuses another file's secret (unwrap, record, destroy) and other key reference kinds", async () => {
    const provider = makeProvider();
    const fileA = randomUUID();
    const fileB = randomUUID();
    const a = await provider.createDataKey(fileA);
    await provider.createDataKey(fileB);

    await expect(provider.unwrapDataKey(fileB, a)).rejects.toMatchObject({ reason: 'wrong-file' });
    await expect(provider.recordHashes(fileB, a, hashes)).rejects.toBeInstanceOf(KeyUnwrapError);
    await expect(provider.destroyDataKey(fileB, a)).rejects.toThrow(/Refusing to delete/);
    expect(fake.secret(`tess/files/${fileA}`)).toBeDefined();

    const envelope: WrappedDataKey = { keyRef: 'local:k1', wrappedKey: Buffer.alloc(60) };
    await expect(provider.unwrapDataKey(fileA, envelope)).rejects.toMatchObject({ reason: 'wrong-provider' });
    const withBytes: WrappedDataKey = { keyRef: a.keyRef, wrappedKey: Buffer.alloc(1) };
    await expect(provider.unwrapDataKey(fileA, withBytes)).rejects.toMatchObject({ reason: 'malformed' });
  });

  it('still reads a file stored under an earlier prefix, since the keyRef names the secret', async () => {
    const fileId = randomUUID();
    const created = await makeProvider({ prefix: 'old/tess' }).createDataKey(fileId);
    expect(created.keyRef).toBe(`secret:old/tess/files/${fileId}`);
    const key = await makeProvider({ prefix: 'new' }).unwrapDataKey(fileId, created);
    expect(key.equals(created.dataKey)).toBe(true);
  });

  it('reports a secret without a usable data key as malformed', async () => {
    const provider = makeProvider();
    const fileId = randomUUID();
    const created = await provider.createDataKey(fileId);
    await provider.recordHashes(fileId, created, hashes);
    const { PutSecretValueCommand, SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
    const client = new SecretsManagerClient({ ...FAKE_AWS, endpoint: fake.endpoint });
    await client.send(
      new PutSecretValueCommand({ SecretId: `tess/files/${fileId}`, SecretString: '{"dataKey":"short"}' }),
    );
    client.destroy();
    await expect(provider.unwrapDataKey(fileId, created)).rejects.toMatchObject({ reason: 'malformed' });
  });

  it('is ready when Secrets Manager answers, and probes at most once per checkIntervalMs', async () => {
    const provider = makeProvider();
    await provider.check();
    await provider.check();
    expect(fake.calls.GetSecretValue).toBe(1);

    const eager = makeProvider({ checkIntervalMs: 0, retry: { maxAttempts: 1 } });
    fake.failNext(1, 'AccessDeniedException', 400);
    await expect(eager.check()).rejects.toThrow(/AccessDeniedException/);
  });

  it('validates the prefix and the file id used in secret names', () => {
    expect(() => makeProvider({ prefix: 'bad prefix' })).toThrow(/prefix/);
    expect(() => makeProvider({ prefix: 'trailing/' })).toThrow(/prefix/);
    expect(() => makeProvider().secretName('../x')).toThrow(/File id/);
  });
});
