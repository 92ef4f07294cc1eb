import { randomBytes, randomUUID } from 'node:crypto';
import type { FileHashes, KeyProvider, WrappedDataKey } from './key-provider.js';
import { KeyUnwrapError } from './key-provider.js';
import { decodeBase64Key, KEY_BYTES } from './master-key-source.js';
import {
  isSecretsManagerError,
  RetryingSecretsManagerClient,
  type SecretsManagerConnectionOptions,
} from './secrets-manager.client.js';

export interface PerFileSecretKeyProviderOptions extends SecretsManagerConnectionOptions {
  /** Secret names are `<prefix>/files/<fileId>` (default `tess`). */
  prefix?: string;
  /** KMS key encrypting the secrets (default: the account's `aws/secretsmanager` key). */
  kmsKeyId?: string;
  /** A successful readiness probe is trusted for this long, bounding API calls from probes (default 30 s). */
  checkIntervalMs?: number;
}

interface SecretContent {
  dataKey: Buffer;
  sha1?: string;
  sha256?: string;
}

const SECRET_NAME_PART = /^[A-Za-z0-9/_+=.@-]+$/;
const FILE_ID = /^[A-Za-z0-9_+=.@-]{1,200}$/;
const REF_PREFIX = 'secret:';

/**
 * Per-file-secret mode (opt-in, `KEY_MODE=per-file-secret`): the original design, where each file's data key
 * and its SHA-1/SHA-256 are stored as their own Secrets Manager secret `<prefix>/files/<fileId>`, with
 * SecretString `{"dataKey": "<base64>", "sha1": "<hex>", "sha256": "<hex>"}`. The key reference is
 * `secret:<name>` and the wrapped key is empty; nothing key-related goes into the object header.
 *
 * Cost and limits (AWS pricing and "Secrets Manager quotas" pages, per account and region):
 * - about $0.40 per secret per month, i.e. per stored file (1 million files: about $400 a month), plus
 *   $0.05 per 10,000 API calls: an upload makes 3 calls (CreateSecret, GetSecretValue, PutSecretValue), a
 *   download or verify 1 (GetSecretValue; keys are not cached here);
 * - writes are throttled at about 50 per second: PutSecretValue (combined with UpdateSecret and the
 *   replication calls) 50/s, not adjustable, and CreateSecret about the same, so sustained ingest tops out
 *   near 50 files per second across all workers. Throttled calls (ThrottlingException) are retried here with
 *   exponential backoff and full jitter. Reads (GetSecretValue + DescribeSecret) allow 10,000 per second;
 * - deletion uses ForceDeleteWithoutRecovery: there is no recovery window.
 * Envelope mode has none of these costs: one master secret, read once per process.
 */
export class PerFileSecretKeyProvider implements KeyProvider {
  readonly mode = 'per-file-secret';
  readonly prefix: string;
  readonly #sm: RetryingSecretsManagerClient;
  readonly #kmsKeyId: string | undefined;
  readonly #checkIntervalMs: number;
  #checkedAt = Number.NEGATIVE_INFINITY;

  constructor(options: PerFileSecretKeyProviderOptions) {
    const prefix = options.prefix ?? 'tess';
    if (!SECRET_NAME_PART.test(prefix) || prefix.startsWith('/') || prefix.endsWith('/')) {
      throw new Error(
        `Secret name prefix "${prefix}" must be characters of [A-Za-z0-9/_+=.@-], not ending in /`,
      );
    }
    this.prefix = prefix;
    this.#sm = new RetryingSecretsManagerClient(options);
    this.#kmsKeyId = options.kmsKeyId;
    this.#checkIntervalMs = options.checkIntervalMs ?? 30_000;
  }

  /** Secret name for a file. */
  secretName(fileId: string): string {
    if (typeof fileId !== 'string' || !FILE_ID.test(fileId)) {
      throw new Error('File id must be 1-200 characters of [A-Za-z0-9_+=.@-] to name a secret');
    }
    return `${this.prefix}/files/${fileId}`;
  }

  /**
   * Creates the file's secret. If it already exists (a re-run of the same job), its key is returned
   * instead of being replaced, so an object already written under it stays readable.
   */
  async createDataKey(fileId: string): Promise<{ dataKey: Buffer } & WrappedDataKey> {
    const name = this.secretName(fileId);
    const dataKey = randomBytes(KEY_BYTES);
    const keyRef = `${REF_PREFIX}${name}`;
    try {
      await this.#sm.createSecret({
        Name: name,
        SecretString: JSON.stringify({ dataKey: dataKey.toString('base64') }),
        ClientRequestToken: randomUUID(),
        KmsKeyId: this.#kmsKeyId,
        Description: `TESS data key of file ${fileId}`,
      });
      return { dataKey, keyRef, wrappedKey: Buffer.alloc(0) };
    } catch (error) {
      dataKey.fill(0);
      if (!isSecretsManagerError(error, 'ResourceExistsException')) throw error;
    }
    const existing = await this.#read(fileId, name, keyRef);
    return { dataKey: existing.dataKey, keyRef, wrappedKey: Buffer.alloc(0) };
  }

  async unwrapDataKey(fileId: string, wrapped: WrappedDataKey): Promise<Buffer> {
    const name = this.#boundName(fileId, wrapped);
    return (await this.#read(fileId, name, wrapped.keyRef)).dataKey;
  }

  /** Adds the hashes to the file's secret (PutSecretValue); skipped when the same hashes are already there. */
  async recordHashes(fileId: string, wrapped: WrappedDataKey, hashes: FileHashes): Promise<void> {
    if (!/^[0-9a-f]{40}$/.test(hashes.sha1) || !/^[0-9a-f]{64}$/.test(hashes.sha256)) {
      throw new Error('Hashes must be lowercase hex: SHA-1 40 characters, SHA-256 64 characters');
    }
    const name = this.#boundName(fileId, wrapped);
    const content = await this.#read(fileId, name, wrapped.keyRef);
    try {
      if (content.sha1 === hashes.sha1 && content.sha256 === hashes.sha256) return;
      await this.#sm.putSecretValue({
        SecretId: name,
        SecretString: JSON.stringify({
          dataKey: content.dataKey.toString('base64'),
          sha1: hashes.sha1,
          sha256: hashes.sha256,
        }),
        ClientRequestToken: randomUUID(),
      });
    } finally {
      content.dataKey.fill(0);
    }
  }

  /** Deletes the file's secret at once (no recovery window); a secret already gone is fine. */
  async destroyDataKey(fileId: string, wrapped: WrappedDataKey): Promise<void> {
    let name: string;
    try {
      name = this.#boundName(fileId, wrapped);
    } catch (error) {
      throw new Error(`Refusing to delete the secret named by a key reference that is not file ${fileId}'s`, {
        cause: error,
      });
    }
    try {
      await this.#sm.deleteSecret({ SecretId: name, ForceDeleteWithoutRecovery: true });
    } catch (error) {
      if (isSecretsManagerError(error, 'ResourceNotFoundException')) return;
      if (isSecretsManagerError(error, 'InvalidRequestException') && /deletion/i.test(error.message)) return;
      throw error;
    }
  }

  /**
   * Reads a secret that never exists under the prefix: ResourceNotFoundException proves the service is
   * reachable and the credentials may read `<prefix>/files/*`. Success is remembered for `checkIntervalMs`.
   */
  async check(): Promise<void> {
    if (Date.now() - this.#checkedAt < this.#checkIntervalMs) return;
    try {
      await this.#sm.getSecretValue({ SecretId: `${this.prefix}/files/.readiness-probe` });
    } catch (error) {
      if (!isSecretsManagerError(error, 'ResourceNotFoundException')) throw error;
    }
    this.#checkedAt = Date.now();
  }

  /** Closes the HTTP connections of a client built by this provider. */
  async close(): Promise<void> {
    this.#sm.close();
  }

  /** The secret name in `wrapped.keyRef`, which must be this file's secret (under any prefix). */
  #boundName(fileId: string, wrapped: WrappedDataKey): string {
    const keyRef = String(wrapped.keyRef);
    if (!keyRef.startsWith(REF_PREFIX)) {
      throw new KeyUnwrapError(
        fileId,
        keyRef,
        'wrong-provider',
        `Key reference of file ${fileId} does not name a per-file secret`,
      );
    }
    this.secretName(fileId);
    const name = keyRef.slice(REF_PREFIX.length);
    if (!name.endsWith(`/files/${fileId}`) || !SECRET_NAME_PART.test(name)) {
      throw new KeyUnwrapError(
        fileId,
        keyRef,
        'wrong-file',
        `Key reference ${keyRef} is not the secret of file ${fileId}`,
      );
    }
    if (wrapped.wrappedKey !== undefined && wrapped.wrappedKey.length !== 0) {
      throw new KeyUnwrapError(
        fileId,
        keyRef,
        'malformed',
        `File ${fileId} has a wrapped key in per-file-secret mode`,
      );
    }
    return name;
  }

  async #read(fileId: string, name: string, keyRef: string): Promise<SecretContent> {
    let secretString: string | undefined;
    try {
      secretString = (await this.#sm.getSecretValue({ SecretId: name })).SecretString;
    } catch (error) {
      if (isSecretsManagerError(error, 'ResourceNotFoundException')) {
        throw new KeyUnwrapError(
          fileId,
          keyRef,
          'key-not-found',
          `Secret ${name} of file ${fileId} does not exist`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
    const content = parseContent(secretString);
    if (content === undefined) {
      throw new KeyUnwrapError(
        fileId,
        keyRef,
        'malformed',
        `Secret ${name} does not hold {"dataKey": "<base64 of ${KEY_BYTES} bytes>"}`,
      );
    }
    return content;
  }
}

function parseContent(secretString: string | undefined): SecretContent | undefined {
  if (secretString === undefined) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(secretString);
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null) return undefined;
  const record = data as Record<string, unknown>;
  const dataKey = decodeBase64Key(record.dataKey);
  if (dataKey === undefined) return undefined;
  return {
    dataKey,
    sha1: typeof record.sha1 === 'string' ? record.sha1 : undefined,
    sha256: typeof record.sha256 === 'string' ? record.sha256 : undefined,
  };
}
