import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FAKE_AWS, type SecretsManagerFake, startSecretsManagerFake } from './secrets-manager-fake.js';

describe('Secrets Manager fake (driven by the real SDK client)', () => {
  let fake: SecretsManagerFake;
  let client: SecretsManagerClient;

  beforeEach(async () => {
    fake = await startSecretsManagerFake();
    client = new SecretsManagerClient({ ...FAKE_AWS, endpoint: fake.endpoint, maxAttempts: 1 });
  });
  afterEach(async () => {
    client.destroy();
    await fake.close();
  });

  it('creates a secret, moves AWSCURRENT on PutSecretValue and serves any version by id', async () => {
    const created = await client.send(new CreateSecretCommand({ Name: 'app/key', SecretString: 'one' }));
    const put = await client.send(new PutSecretValueCommand({ SecretId: 'app/key', SecretString: 'two' }));

    const current = await client.send(new GetSecretValueCommand({ SecretId: 'app/key' }));
    expect(current).toMatchObject({
      SecretString: 'two',
      VersionId: put.VersionId,
      VersionStages: ['AWSCURRENT'],
    });
    const previous = await client.send(
      new GetSecretValueCommand({ SecretId: 'app/key', VersionStage: 'AWSPREVIOUS' }),
    );
    expect(previous.VersionId).toBe(created.VersionId);
    const byId = await client.send(
      new GetSecretValueCommand({ SecretId: created.ARN, VersionId: created.VersionId }),
    );
    expect(byId.SecretString).toBe('one');

    const described = await client.send(new DescribeSecretCommand({ SecretId: 'app/key' }));
    expect(described.VersionIdsToStages).toEqual({
      [created.VersionId!]: ['AWSPREVIOUS'],
      [put.VersionId!]: ['AWSCURRENT'],
    });
    expect(fake.calls).toMatchObject({
      CreateSecret: 1,
      PutSecretValue: 1,
      GetSecretValue: 3,
      DescribeSecret: 1,
    });
  });

  it('answers AWS-shaped errors the SDK turns into typed exceptions', async () => {
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'missing' }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
      $metadata: { httpStatusCode: 400 },
    });
    await client.send(new CreateSecretCommand({ Name: 'dup', SecretString: 'x' }));
    await expect(
      client.send(new CreateSecretCommand({ Name: 'dup', SecretString: 'y' })),
    ).rejects.toMatchObject({
      name: 'ResourceExistsException',
    });
  });

  it('treats a repeated ClientRequestToken with the same value as the same version', async () => {
    const token = '11111111-2222-3333-4444-555555555555';
    await client.send(new CreateSecretCommand({ Name: 's', SecretString: 'a' }));
    const first = await client.send(
      new PutSecretValueCommand({ SecretId: 's', SecretString: 'b', ClientRequestToken: token }),
    );
    const again = await client.send(
      new PutSecretValueCommand({ SecretId: 's', SecretString: 'b', ClientRequestToken: token }),
    );
    expect(again.VersionId).toBe(first.VersionId);
    expect(fake.secret('s')?.versions).toHaveLength(2);
  });

  it('injects faults for the next n requests, optionally of one operation only', async () => {
    await client.send(new CreateSecretCommand({ Name: 's', SecretString: 'a' }));
    fake.failNext(1, 'ThrottlingException', 400, 'GetSecretValue');
    await client.send(new DescribeSecretCommand({ SecretId: 's' }));
    await expect(client.send(new GetSecretValueCommand({ SecretId: 's' }))).rejects.toMatchObject({
      name: 'ThrottlingException',
    });
    await expect(client.send(new GetSecretValueCommand({ SecretId: 's' }))).resolves.toMatchObject({
      SecretString: 'a',
    });

    fake.dropNext(1);
    await expect(client.send(new GetSecretValueCommand({ SecretId: 's' }))).rejects.toThrow();
    expect(fake.calls.GetSecretValue).toBe(3);
  });

  it('deletes at once with ForceDeleteWithoutRecovery, otherwise schedules deletion', async () => {
    await client.send(new CreateSecretCommand({ Name: 'gone', SecretString: 'a' }));
    await client.send(new CreateSecretCommand({ Name: 'later', SecretString: 'b' }));
    await client.send(new DeleteSecretCommand({ SecretId: 'gone', ForceDeleteWithoutRecovery: true }));
    await client.send(new DeleteSecretCommand({ SecretId: 'later' }));
    expect(fake.secret('gone')).toBeUndefined();
    expect(fake.secret('later')?.deleted).toBe(true);
    await expect(client.send(new GetSecretValueCommand({ SecretId: 'later' }))).rejects.toMatchObject({
      name: 'InvalidRequestException',
    });
  });
});
