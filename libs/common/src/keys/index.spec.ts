import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  FAKE_AWS,
  type SecretsManagerFake,
  startSecretsManagerFake,
} from '../../../../test/support/secrets-manager-fake.js';
import {
  AwsSecretsMasterKeySource,
  type CreateKeyProviderOptions,
  createKeyProvider,
  EnvelopeKeyProvider,
  LocalFileMasterKeySource,
  PerFileSecretKeyProvider,
} from './index.js';

describe('createKeyProvider', () => {
  let dir: string;
  let fake: SecretsManagerFake;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tess-factory-'));
    fake = await startSecretsManagerFake();
  });
  afterEach(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  const aws = () => ({ provider: 'aws-secrets-manager' as const, ...FAKE_AWS, endpoint: fake.endpoint });

  it('builds envelope mode on the local key file', async () => {
    const provider = createKeyProvider({
      provider: 'local',
      masterKeyFile: join(dir, 'master.key'),
      mode: 'envelope',
    });
    expect(provider).toBeInstanceOf(EnvelopeKeyProvider);
    expect(provider.source).toBeInstanceOf(LocalFileMasterKeySource);
    const fileId = randomUUID();
    const created = await provider.createDataKey(fileId);
    expect(created.keyRef).toMatch(/^local:/);
    expect((await provider.unwrapDataKey(fileId, created)).equals(created.dataKey)).toBe(true);
  });

  it('builds envelope mode on a Secrets Manager master key', async () => {
    const provider = createKeyProvider({ ...aws(), secretId: 'tess/master', mode: 'envelope' });
    expect(provider.source).toBeInstanceOf(AwsSecretsMasterKeySource);
    const created = await provider.createDataKey(randomUUID());
    expect(created.keyRef).toMatch(/^aws-sm:tess\/master:[0-9a-f-]{36}$/);
    await provider.close();
  });

  it('builds per-file-secret mode on Secrets Manager', async () => {
    const provider = createKeyProvider({ ...aws(), prefix: 'acme', mode: 'per-file-secret' });
    expect(provider).toBeInstanceOf(PerFileSecretKeyProvider);
    const fileId = randomUUID();
    expect((await provider.createDataKey(fileId)).keyRef).toBe(`secret:acme/files/${fileId}`);
    await provider.close();
  });

  it('refuses configurations that cannot work, with operator-facing messages', () => {
    const localPerFile: CreateKeyProviderOptions = {
      provider: 'local',
      masterKeyFile: join(dir, 'master.key'),
      mode: 'per-file-secret',
    };
    expect(() => createKeyProvider(localPerFile)).toThrow(
      /per-file-secret.*KEY_PROVIDER=aws-secrets-manager/,
    );
    expect(() => createKeyProvider({ ...aws(), mode: 'envelope' })).toThrow(/MASTER_KEY_SECRET_ID/);
    const unknownMode = { ...aws(), secretId: 's', mode: 'plaintext' } as unknown as CreateKeyProviderOptions;
    expect(() => createKeyProvider(unknownMode)).toThrow(/Unknown key mode "plaintext"/);
  });
});
