/** Length of a master key and of a data key: AES-256. */
export const KEY_BYTES = 32;

/** One immutable version of the master key (key-encryption key). */
export interface MasterKey {
  id: string;
  key: Buffer;
}

/**
 * Where the master key comes from: a local keyring file or an AWS Secrets Manager secret.
 *
 * Versions are immutable: an id names one key forever, so a data key wrapped under `id` can be unwrapped
 * for as long as version `id` exists. Keys are cached in memory once read and never logged; they are kept
 * in private fields so that logging the source object does not print them.
 */
export interface MasterKeySource {
  /**
   * Written into key references between the provider name and the version id, for sources whose
   * versions are only unique within a container (`aws-sm:<secretId>:<versionId>`); undefined for the
   * local keyring, whose file path may differ between hosts.
   */
  readonly keyRefScope: string | undefined;
  /** The version new data keys are wrapped under; created on first use when the store is empty. */
  current(): Promise<MasterKey>;
  /** A specific version; rejects with {@link MasterKeyNotFoundError} when it does not exist. */
  get(id: string): Promise<Buffer>;
  /** Adds a fresh random version and makes it current. Older versions stay readable. */
  rotate(): Promise<{ id: string }>;
  /** Throws when no current master key can be obtained (readiness). */
  check(): Promise<void>;
  /** Releases connections at shutdown; the source is not used afterwards. */
  close(): Promise<void>;
}

/** The requested master key version does not exist in the store (pruned, or from another store). */
export class MasterKeyNotFoundError extends Error {
  constructor(
    readonly keyId: string,
    where: string,
    options?: { cause?: unknown },
  ) {
    super(`Master key version "${keyId}" does not exist in ${where}`, options);
    this.name = 'MasterKeyNotFoundError';
  }
}

const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

/** Decodes the canonical base64 form of a 32-byte key, or returns undefined (never echoes the input). */
export function decodeBase64Key(value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || !BASE64_KEY.test(value)) return undefined;
  const key = Buffer.from(value, 'base64');
  return key.length === KEY_BYTES ? key : undefined;
}
