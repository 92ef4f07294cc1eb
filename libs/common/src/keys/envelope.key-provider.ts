import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { secretKey } from '../util/secret-key.js';
import type { FileHashes, KeyProvider, WrappedDataKey } from './key-provider.js';
import { KeyUnwrapError } from './key-provider.js';
import { KEY_BYTES, MasterKeyNotFoundError, type MasterKeySource } from './master-key-source.js';

/*
 * Envelope encryption of per-file data keys. Invariants:
 * - a data key is 32 random bytes, fresh per file, and leaves this module only in the caller's memory;
 * - wrappedKey = nonce (12 random bytes) || AES-256-GCM(masterKey, dataKey) (32) || tag (16) = 60 bytes;
 * - the AAD binds the wrap to the file and to the key reference:
 *     "tess.dek-wrap.v1" || u16be(len fileId) || fileId || u16be(len keyRef) || keyRef   (UTF-8),
 *   so a wrapped key copied to another file, or given another keyRef, fails authentication;
 * - keyRef = `<provider>:[<scope>:]<masterKeyId>`, scope being the secret id for Secrets Manager; the key
 *   id is the part after the last ':' (key ids never contain ':');
 * - nothing returned or thrown contains key material.
 */

const WRAP_LABEL = Buffer.from('tess.dek-wrap.v1', 'utf8');
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Length of an envelope-mode wrapped key: nonce, encrypted 32-byte data key, GCM tag. */
export const WRAPPED_KEY_BYTES = NONCE_BYTES + KEY_BYTES + TAG_BYTES;

export type EnvelopeProviderName = 'local' | 'aws-sm';

/**
 * Envelope mode (the default): per-file data keys wrapped by a versioned master key.
 *
 * An old wrapped key (e.g. a row or object header restored from a backup taken before a rotation) still
 * unwraps for as long as its master key version exists in the source; once that version is gone it fails
 * with `KeyUnwrapError` reason `key-not-found`. A wrapped key never unwraps under any other version.
 */
export class EnvelopeKeyProvider implements KeyProvider {
  readonly mode = 'envelope';

  constructor(
    readonly source: MasterKeySource,
    readonly providerName: EnvelopeProviderName,
  ) {}

  async createDataKey(fileId: string): Promise<{ dataKey: Buffer } & WrappedDataKey> {
    requireFileId(fileId);
    const master = await this.source.current();
    const keyRef = this.#keyRef(master.id);
    const dataKey = randomBytes(KEY_BYTES);
    try {
      return { dataKey, keyRef, wrappedKey: wrap(master.key, dataKey, fileId, keyRef) };
    } finally {
      master.key.fill(0);
    }
  }

  async unwrapDataKey(fileId: string, wrapped: WrappedDataKey): Promise<Buffer> {
    requireFileId(fileId);
    const { keyRef, wrappedKey } = wrapped;
    const prefix = `${this.providerName}:`;
    if (typeof keyRef !== 'string' || !keyRef.startsWith(prefix)) {
      throw new KeyUnwrapError(
        fileId,
        String(keyRef),
        'wrong-provider',
        `Key reference of file ${fileId} does not belong to the "${this.providerName}" envelope key provider`,
      );
    }
    const keyId = keyRef.slice(keyRef.lastIndexOf(':') + 1);
    if (!keyId || !Buffer.isBuffer(wrappedKey) || wrappedKey.length !== WRAPPED_KEY_BYTES) {
      throw new KeyUnwrapError(
        fileId,
        keyRef,
        'malformed',
        `Wrapped data key of file ${fileId} is malformed (expected ${WRAPPED_KEY_BYTES} bytes and a key id)`,
      );
    }
    let masterKey: Buffer;
    try {
      masterKey = await this.source.get(keyId);
    } catch (error) {
      if (error instanceof MasterKeyNotFoundError) {
        throw new KeyUnwrapError(
          fileId,
          keyRef,
          'key-not-found',
          `Data key of file ${fileId} is wrapped under master key ${keyRef}, which no longer exists`,
          { cause: error },
        );
      }
      throw error;
    }
    try {
      return unwrap(masterKey, wrappedKey, fileId, keyRef);
    } catch {
      throw new KeyUnwrapError(
        fileId,
        keyRef,
        'authentication-failed',
        `Wrapped data key of file ${fileId} does not authenticate under master key ${keyRef} ` +
          '(wrong master key, tampered, or wrapped for another file)',
      );
    } finally {
      masterKey.fill(0);
    }
  }

  /**
   * Re-wraps a data key under the current master key version (rotate-master-key script). Verifies the old
   * wrap first. Returns `wrapped` itself when it already uses the current version, so callers can skip the
   * write (`result.keyRef === wrapped.keyRef`).
   */
  async rewrap(fileId: string, wrapped: WrappedDataKey): Promise<WrappedDataKey> {
    const dataKey = await this.unwrapDataKey(fileId, wrapped);
    const master = await this.source.current();
    try {
      const keyRef = this.#keyRef(master.id);
      if (keyRef === wrapped.keyRef) return wrapped;
      return { keyRef, wrappedKey: wrap(master.key, dataKey, fileId, keyRef) };
    } finally {
      dataKey.fill(0);
      master.key.fill(0);
    }
  }

  /** The key reference new data keys get now; rows with another keyRef are candidates for `rewrap`. */
  async currentKeyRef(): Promise<string> {
    const master = await this.source.current();
    master.key.fill(0);
    return this.#keyRef(master.id);
  }

  /** Adds a master key version and makes it current; returns the key reference new wraps will carry. */
  async rotateMasterKey(): Promise<{ keyRef: string }> {
    const { id } = await this.source.rotate();
    return { keyRef: this.#keyRef(id) };
  }

  /** Envelope mode keeps no hashes with the key: they live in the files row. */
  async recordHashes(_fileId: string, _wrapped: WrappedDataKey, _hashes: FileHashes): Promise<void> {}

  /** Nothing to forget: the wrapped key lives only in the row and object header, which the caller deletes. */
  async destroyDataKey(_fileId: string, _wrapped: WrappedDataKey): Promise<void> {}

  check(): Promise<void> {
    return this.source.check();
  }

  /** Closes the master key source. */
  close(): Promise<void> {
    return this.source.close();
  }

  #keyRef(masterKeyId: string): string {
    const scope = this.source.keyRefScope;
    return scope === undefined
      ? `${this.providerName}:${masterKeyId}`
      : `${this.providerName}:${scope}:${masterKeyId}`;
  }
}

function wrap(masterKey: Buffer, dataKey: Buffer, fileId: string, keyRef: string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', secretKey(masterKey), nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(wrapAad(fileId, keyRef));
  const ciphertext = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  return Buffer.concat([nonce, ciphertext, cipher.getAuthTag()]);
}

function unwrap(masterKey: Buffer, wrappedKey: Buffer, fileId: string, keyRef: string): Buffer {
  const nonce = wrappedKey.subarray(0, NONCE_BYTES);
  const ciphertext = wrappedKey.subarray(NONCE_BYTES, NONCE_BYTES + KEY_BYTES);
  const tag = wrappedKey.subarray(NONCE_BYTES + KEY_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', secretKey(masterKey), nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(wrapAad(fileId, keyRef));
  decipher.setAuthTag(tag);
  const dataKey = decipher.update(ciphertext);
  try {
    decipher.final();
  } catch (error) {
    dataKey.fill(0);
    throw error;
  }
  return dataKey;
}

function wrapAad(fileId: string, keyRef: string): Buffer {
  const parts: Buffer[] = [WRAP_LABEL];
  for (const value of [fileId, keyRef]) {
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length > 0xffff) throw new Error('File id or key reference longer than 65535 bytes');
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

function requireFileId(fileId: string): void {
  if (typeof fileId !== 'string' || fileId.length === 0 || fileId.length > 1024) {
    throw new Error('A data key needs a file id (1-1024 characters)');
  }
}
