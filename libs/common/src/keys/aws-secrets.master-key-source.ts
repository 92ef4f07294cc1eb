import { randomBytes, randomUUID } from 'node:crypto';
import type { GetSecretValueCommandOutput } from '@aws-sdk/client-secrets-manager';
import {
  decodeBase64Key,
  KEY_BYTES,
  type MasterKey,
  MasterKeyNotFoundError,
  type MasterKeySource,
} from './master-key-source.js';
import {
  isSecretsManagerError,
  RetryingSecretsManagerClient,
  type SecretsManagerConnectionOptions,
} from './secrets-manager.client.js';

/** Secrets Manager version ids are 32-64 characters (UUIDs when the SDK generates them). */
const VERSION_ID = /^[A-Za-z0-9-]{32,64}$/;

export interface AwsSecretsMasterKeySourceOptions extends SecretsManagerConnectionOptions {
  /** Name or ARN of the secret whose SecretString is the base64 of a 32-byte key (MASTER_KEY_SECRET_ID). */
  secretId: string;
  /** Create the secret with a fresh random key when it does not exist (default true; never for an ARN). */
  createIfMissing?: boolean;
  /** KMS key for a secret created here (default: the account's `aws/secretsmanager` key). */
  kmsKeyId?: string;
  /**
   * Re-read AWSCURRENT to pick up a rotation made elsewhere once the cached view is this old (ms).
   * Default: never (fetched once per process). Refresh failures keep the cached version.
   */
  refreshCurrentAfterMs?: number;
}

/**
 * Master keys from one AWS Secrets Manager secret; each secret version is a master key version and its
 * VersionId the key id. AWSCURRENT is fetched once and every version is cached after its first read, so the
 * service is called once per process and version, not per file.
 *
 * Rotation (`rotate()`) is PutSecretValue with a new random key: the new version becomes AWSCURRENT and the
 * old one AWSPREVIOUS. Older versions lose their label and Secrets Manager deletes unlabeled versions once
 * a secret has more than 100 (keeping those younger than 24 h): rotate rarely and re-wrap every data key
 * (the rotate-master-key script) after each rotation, so no data key depends on an unlabeled version.
 */
export class AwsSecretsMasterKeySource implements MasterKeySource {
  readonly secretId: string;
  readonly keyRefScope: string;
  readonly #sm: RetryingSecretsManagerClient;
  readonly #createIfMissing: boolean;
  readonly #kmsKeyId: string | undefined;
  readonly #refreshAfterMs: number | undefined;
  readonly #keys = new Map<string, Buffer>();
  readonly #pending = new Map<string, Promise<Buffer>>();
  #currentId: string | undefined;
  #loadedAt = 0;
  #loadingCurrent: Promise<void> | undefined;

  constructor(options: AwsSecretsMasterKeySourceOptions) {
    if (!options.secretId)
      throw new Error('AwsSecretsMasterKeySource needs a secret id (MASTER_KEY_SECRET_ID)');
    this.secretId = options.secretId;
    this.keyRefScope = options.secretId;
    this.#sm = new RetryingSecretsManagerClient(options);
    this.#createIfMissing = options.createIfMissing ?? true;
    this.#kmsKeyId = options.kmsKeyId;
    this.#refreshAfterMs = options.refreshCurrentAfterMs;
  }

  async current(): Promise<MasterKey> {
    if (this.#currentId === undefined) {
      await this.#loadCurrent();
    } else if (this.#refreshAfterMs !== undefined && Date.now() - this.#loadedAt >= this.#refreshAfterMs) {
      await this.#loadCurrent().catch(() => undefined);
    }
    const id = this.#currentId!;
    return { id, key: Buffer.from(this.#keys.get(id)!) };
  }

  async get(id: string): Promise<Buffer> {
    const cached = this.#keys.get(id);
    if (cached) return Buffer.from(cached);
    if (!VERSION_ID.test(id))
      throw new MasterKeyNotFoundError(id, `Secrets Manager secret "${this.secretId}"`);
    let pending = this.#pending.get(id);
    if (!pending) {
      pending = this.#fetchVersion(id).finally(() => this.#pending.delete(id));
      this.#pending.set(id, pending);
    }
    return Buffer.from(await pending);
  }

  async rotate(): Promise<{ id: string }> {
    await this.current();
    const key = randomBytes(KEY_BYTES);
    const out = await this.#sm.putSecretValue({
      SecretId: this.secretId,
      SecretString: key.toString('base64'),
      ClientRequestToken: randomUUID(),
    });
    const id = this.#requireVersionId(out.VersionId);
    this.#keys.set(id, key);
    this.#currentId = id;
    this.#loadedAt = Date.now();
    return { id };
  }

  /** Resolves once the current master key is cached (fetching it if needed); no call per probe after that. */
  async check(): Promise<void> {
    await this.current();
  }

  /** Closes the HTTP connections of a client built by this source. */
  async close(): Promise<void> {
    this.#sm.close();
  }

  #loadCurrent(): Promise<void> {
    this.#loadingCurrent ??= this.#fetchCurrent().finally(() => {
      this.#loadingCurrent = undefined;
    });
    return this.#loadingCurrent;
  }

  async #fetchCurrent(): Promise<void> {
    let out: Pick<GetSecretValueCommandOutput, 'VersionId' | 'SecretString'>;
    try {
      out = await this.#sm.getSecretValue({ SecretId: this.secretId });
    } catch (error) {
      if (!isSecretsManagerError(error, 'ResourceNotFoundException')) throw error;
      if (!this.#createIfMissing) {
        throw new Error(`Master key secret "${this.secretId}" does not exist in Secrets Manager`, {
          cause: error,
        });
      }
      out = await this.#create();
    }
    const id = this.#requireVersionId(out.VersionId);
    this.#remember(id, out.SecretString);
    this.#currentId = id;
    this.#loadedAt = Date.now();
  }

  /** Creates the secret; when another process created it first, reads theirs. */
  async #create(): Promise<Pick<GetSecretValueCommandOutput, 'VersionId' | 'SecretString'>> {
    if (this.secretId.startsWith('arn:')) {
      throw new Error(
        `Master key secret ${this.secretId} does not exist; a secret can only be created by name, not by ARN`,
      );
    }
    const key = randomBytes(KEY_BYTES);
    const secretString = key.toString('base64');
    key.fill(0);
    try {
      const out = await this.#sm.createSecret({
        Name: this.secretId,
        SecretString: secretString,
        ClientRequestToken: randomUUID(),
        KmsKeyId: this.#kmsKeyId,
        Description: 'TESS master key (base64 of 32 bytes). Each version is a key id: never edit a version.',
      });
      return { VersionId: out.VersionId, SecretString: secretString };
    } catch (error) {
      if (!isSecretsManagerError(error, 'ResourceExistsException')) throw error;
      return this.#sm.getSecretValue({ SecretId: this.secretId });
    }
  }

  async #fetchVersion(id: string): Promise<Buffer> {
    let out: GetSecretValueCommandOutput;
    try {
      out = await this.#sm.getSecretValue({ SecretId: this.secretId, VersionId: id });
    } catch (error) {
      if (isSecretsManagerError(error, 'ResourceNotFoundException')) {
        throw new MasterKeyNotFoundError(id, `Secrets Manager secret "${this.secretId}"`, { cause: error });
      }
      throw error;
    }
    if (out.VersionId !== undefined && out.VersionId !== id) {
      throw new Error(`Secrets Manager returned version ${out.VersionId} of "${this.secretId}" for ${id}`);
    }
    return this.#remember(id, out.SecretString);
  }

  #remember(id: string, secretString: string | undefined): Buffer {
    const key = decodeBase64Key(secretString);
    if (key === undefined) {
      throw new Error(
        `Secret "${this.secretId}" version ${id} does not hold a master key: ` +
          `its SecretString must be the base64 of ${KEY_BYTES} random bytes`,
      );
    }
    this.#keys.set(id, key);
    return key;
  }

  #requireVersionId(versionId: string | undefined): string {
    if (!versionId) throw new Error(`Secrets Manager returned no VersionId for "${this.secretId}"`);
    return versionId;
  }
}
