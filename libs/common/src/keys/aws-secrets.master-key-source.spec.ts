import { randomBytes, randomUUID } from 'node:crypto';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FAKE_AWS,
  type SecretsManagerFake,
  startSecretsManagerFake,
} from '../../../../test/support/secrets-manager-fake.js';
import {
  AwsSecretsMasterKeySource,
  type AwsSecretsMasterKeySourceOptions,
} from './aws-secrets.master-key-source.js';
import { EnvelopeKeyProvider } from './envelope.key-provider.js';
import { KeyUnwrapError } from './key-provider.js';
import { MasterKeyNotFoundError } from './master-key-source.js';
import { SecretsManagerRequestError } from './secrets-manager.client.js';

describe('AwsSecretsMasterKeySource (real SDK client against the Secrets Manager fake)', () => {
  let fake: SecretsManagerFake;
  const sources: AwsSecretsMasterKeySource[] = [];
  const secretId = 'tess/master-key';

  beforeEach(async () => {
    fake = await startSecretsManagerFake();
  });
  afterEach(async () => {
    for (const source of sources.splice(0)) await source.close();
    await fake.close();
  });

  const makeSource = (options: Partial<AwsSecretsMasterKeySourceOptions> = {}): AwsSecretsMasterKeySource => {
    const source = new AwsSecretsMasterKeySource({
      ...FAKE_AWS,
      endpoint: fake.endpoint,
      secretId,
      retry: { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
      ...options,
    });
    sources.push(source);
    return source;
  };
  const seed = async (value: string): Promise<string> => {
    const client = new SecretsManagerClient({ ...FAKE_AWS, endpoint: fake.endpoint });
    try {
      const out = await client.send(new CreateSecretCommand({ Name: secretId, SecretString: value }));
      return out.VersionId!;
    } finally {
      client.destroy();
    }
  };

  it('creates the secret with a fresh random key when it does not exist', async () => {
    const current = await makeSource().current();

    const secret = fake.secret(secretId);
    expect(secret?.versions).toEqual([
      { versionId: current.id, secretString: current.key.toString('base64'), stages: ['AWSCURRENT'] },
    ]);
    expect(current.key).toHaveLength(32);
    expect(fake.calls).toMatchObject({ GetSecretValue: 1, CreateSecret: 1 });
  });

  it('fetches the current key once and serves it from memory afterwards', async () => {
    const key = randomBytes(32);
    const versionId = await seed(key.toString('base64'));
    fake.resetCalls();
    const source = makeSource();

    const results = await Promise.all([source.current(), source.current(), source.current()]);
    for (let i = 0; i < 5; i++) results.push(await source.current());
    await source.check();
    expect(await source.get(versionId)).toEqual(key);

    for (const result of results) expect(result).toEqual({ id: versionId, key });
    expect(fake.calls.GetSecretValue).toBe(1);
    expect(fake.calls.CreateSecret).toBe(0);
  });

  it('settles a creation race between two processes on the secret that won', async () => {
    const [a, b] = await Promise.all([makeSource().current(), makeSource().current()]);

    expect(a).toEqual(b);
    expect(fake.secret(secretId)?.versions).toHaveLength(1);
    expect(fake.calls.CreateSecret).toBe(2);
  });

  it('fetches an older version by VersionId once and caches it', async () => {
    const oldKey = randomBytes(32);
    const oldVersion = await seed(oldKey.toString('base64'));
    const writer = makeSource();
    const { id: newVersion } = await writer.rotate();
    fake.resetCalls();

    const reader = makeSource();
    expect((await reader.current()).id).toBe(newVersion);
    expect(await reader.get(oldVersion)).toEqual(oldKey);
    expect(await reader.get(oldVersion)).toEqual(oldKey);
    expect(await reader.get(newVersion)).toHaveLength(32);
    expect(fake.calls.GetSecretValue).toBe(2);
  });

  it('rejects a version that does not exist with MasterKeyNotFoundError', async () => {
    const source = makeSource();
    await source.current();
    await expect(source.get(randomUUID())).rejects.toBeInstanceOf(MasterKeyNotFoundError);
    await expect(source.get('not a version id')).rejects.toBeInstanceOf(MasterKeyNotFoundError);
  });

  it('retries ThrottlingException with backoff and still succeeds', async () => {
    await seed(randomBytes(32).toString('base64'));
    fake.resetCalls();
    fake.failNext(2, 'ThrottlingException', 400);

    const current = await makeSource().current();

    expect(current.key).toHaveLength(32);
    expect(fake.calls.GetSecretValue).toBe(3);
  });

  it('retries 5xx errors and dropped connections', async () => {
    await seed(randomBytes(32).toString('base64'));
    fake.resetCalls();
    fake.failNext(1, 'InternalServiceError', 500);
    fake.dropNext(1);
    fake.failNext(1, 'ServiceUnavailable', 503);

    await expect(makeSource().current()).resolves.toMatchObject({ key: expect.any(Buffer) });
    expect(fake.calls.GetSecretValue).toBe(4);
  });

  it('gives up after maxAttempts with an error naming the operation, secret and cause', async () => {
    fake.failNext(100, 'ThrottlingException', 400);
    const error = await makeSource()
      .current()
      .then(
        () => undefined,
        (e: unknown) => e,
      );

    expect(error).toBeInstanceOf(SecretsManagerRequestError);
    expect((error as Error).message).toBe(
      'Secrets Manager GetSecretValue on "tess/master-key" failed after 4 attempts: ThrottlingException: Injected ThrottlingException',
    );
    expect(fake.calls.GetSecretValue).toBe(4);
  });

  it('does not retry what retrying cannot fix (access denied)', async () => {
    fake.failNext(1, 'AccessDeniedException', 400);
    await expect(makeSource().current()).rejects.toThrow(
      /GetSecretValue on "tess\/master-key" failed: AccessDeniedException/,
    );
    expect(fake.calls.GetSecretValue).toBe(1);
  });

  it('keeps trying to fetch after a failure instead of caching the failure', async () => {
    await seed(randomBytes(32).toString('base64'));
    const source = makeSource({ retry: { maxAttempts: 1 } });
    fake.failNext(1, 'ThrottlingException', 400);
    await expect(source.current()).rejects.toThrow(/ThrottlingException/);
    await expect(source.current()).resolves.toMatchObject({ key: expect.any(Buffer) });
  });

  it('refuses a secret that does not hold a base64 32-byte key, without echoing it', async () => {
    await seed('hunter2-not-a-key');
    const error = await makeSource()
      .current()
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(error?.message).toMatch(/does not hold a master key: its SecretString must be the base64 of 32/);
    expect(error?.message).not.toContain('hunter2');
  });

  it('does not create the secret when createIfMissing is false, nor when given an ARN', async () => {
    await expect(makeSource({ createIfMissing: false }).current()).rejects.toThrow(
      /does not exist in Secrets Manager/,
    );
    await expect(
      makeSource({ secretId: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:nope-abcdef' }).current(),
    ).rejects.toThrow(/only be created by name/);
    expect(fake.calls.CreateSecret).toBe(0);
  });

  it('rotates with PutSecretValue: the new version becomes AWSCURRENT, the old one AWSPREVIOUS', async () => {
    const source = makeSource();
    const before = await source.current();
    const { id } = await source.rotate();

    expect((await source.current()).id).toBe(id);
    const stages = Object.fromEntries(fake.secret(secretId)!.versions.map((v) => [v.versionId, v.stages]));
    expect(stages).toEqual({ [before.id]: ['AWSPREVIOUS'], [id]: ['AWSCURRENT'] });
    expect(fake.calls.PutSecretValue).toBe(1);
  });

  it('retries a throttled rotation without creating two versions', async () => {
    const source = makeSource();
    await source.current();
    fake.failNext(2, 'ThrottlingException', 400, 'PutSecretValue');
    await source.rotate();
    expect(fake.calls.PutSecretValue).toBe(3);
    expect(fake.secret(secretId)?.versions).toHaveLength(2);
  });

  it('picks up a rotation made elsewhere once refreshCurrentAfterMs has passed', async () => {
    const reader = makeSource({ refreshCurrentAfterMs: 0 });
    await reader.current();
    const { id } = await makeSource().rotate();
    expect((await reader.current()).id).toBe(id);
  });

  describe('with EnvelopeKeyProvider', () => {
    it('wraps under aws-sm:<secretId>:<versionId>, rotates, re-wraps, and unwraps in a fresh process', async () => {
      const provider = new EnvelopeKeyProvider(makeSource(), 'aws-sm');
      const fileId = randomUUID();
      const created = await provider.createDataKey(fileId);
      const firstVersion = fake.secret(secretId)!.versions[0]!.versionId;
      expect(created.keyRef).toBe(`aws-sm:${secretId}:${firstVersion}`);

      const { keyRef } = await provider.rotateMasterKey();
      const rewrapped = await provider.rewrap(fileId, created);
      expect(rewrapped.keyRef).toBe(keyRef);

      fake.resetCalls();
      const restarted = new EnvelopeKeyProvider(makeSource(), 'aws-sm');
      expect((await restarted.unwrapDataKey(fileId, rewrapped)).equals(created.dataKey)).toBe(true);
      expect((await restarted.unwrapDataKey(fileId, created)).equals(created.dataKey)).toBe(true);
      expect((await restarted.unwrapDataKey(fileId, created)).equals(created.dataKey)).toBe(true);
      expect(fake.calls.GetSecretValue).toBe(2);
    });

    it('answers KeyUnwrapError for a version the secret does not have, but not for an outage', async () => {
      const provider = new EnvelopeKeyProvider(
        makeSource({ retry: { maxAttempts: 2, baseDelayMs: 1 } }),
        'aws-sm',
      );
      const fileId = randomUUID();
      const created = await provider.createDataKey(fileId);
      const forged = { keyRef: `aws-sm:${secretId}:${randomUUID()}`, wrappedKey: created.wrappedKey };
      await expect(provider.unwrapDataKey(fileId, forged)).rejects.toMatchObject({ reason: 'key-not-found' });

      const other = { keyRef: `aws-sm:${secretId}:${randomUUID()}`, wrappedKey: created.wrappedKey };
      fake.failNext(2, 'ThrottlingException', 400);
      const error = await provider.unwrapDataKey(fileId, other).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SecretsManagerRequestError);
      expect(error).not.toBeInstanceOf(KeyUnwrapError);
    });
  });
});
