import { hkdfSync } from 'node:crypto';
import type { TessConfig } from '../config/config.schema.js';
import { AwsSecretsMasterKeySource } from '../keys/aws-secrets.master-key-source.js';
import { EnvelopeKeyProvider } from '../keys/envelope.key-provider.js';
import type { ConfiguredKeyProvider } from '../keys/index.js';
import { LocalFileMasterKeySource } from '../keys/local-file.master-key-source.js';
import type { MasterKeySource } from '../keys/master-key-source.js';

const INFO = Buffer.from('TESS audit chain v1 hmac', 'ascii');

/**
 * The HMAC keys of the audit chain (docs/security.md item 33), derived with HKDF-SHA256 from the master key
 * (label `TESS audit chain v1 hmac`, independent of every data key), so someone with only the database
 * cannot compute a valid link: editing, inserting or re-chaining events needs the master key too. Each
 * event names the master key version its link was made with (`key_ref`, e.g. `local:<id>`), so links
 * made before a rotation verify for as long as that version exists. The same keyring as the key provider:
 * the local key file, or the Secrets Manager secret MASTER_KEY_SECRET_ID (also in per-file-secret mode).
 */
export class AuditKeyring {
  private readonly derived = new Map<string, Buffer>();

  /** `owned`: close the source with the keyring (false when it is the key provider's, closed with it). */
  constructor(
    private readonly source: MasterKeySource,
    private readonly providerName: string,
    private readonly owned = true,
  ) {}

  /** The key new links are made with, and its reference. */
  async current(): Promise<{ keyRef: string; key: Buffer }> {
    const master = await this.source.current();
    const keyRef = this.refOf(master.id);
    try {
      return { keyRef, key: this.remember(keyRef, master.key) };
    } finally {
      master.key.fill(0);
    }
  }

  /** The key of a reference written by `current()`; rejects when that master key version is gone. */
  async key(keyRef: string): Promise<Buffer> {
    const known = this.derived.get(keyRef);
    if (known) return known;
    const prefix = `${this.providerName}:`;
    if (!keyRef.startsWith(prefix))
      throw new Error(`audit key reference "${keyRef}" is not from this keyring`);
    const master = await this.source.get(keyRef.slice(keyRef.lastIndexOf(':') + 1));
    try {
      return this.remember(keyRef, master);
    } finally {
      master.fill(0);
    }
  }

  close(): Promise<void> {
    for (const key of this.derived.values()) key.fill(0);
    this.derived.clear();
    return this.owned ? this.source.close() : Promise.resolve();
  }

  private refOf(id: string): string {
    const scope = this.source.keyRefScope;
    return scope ? `${this.providerName}:${scope}:${id}` : `${this.providerName}:${id}`;
  }

  private remember(keyRef: string, master: Buffer): Buffer {
    let key = this.derived.get(keyRef);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), INFO, 32));
      this.derived.set(keyRef, key);
    }
    return key;
  }
}

/**
 * The audit keyring of a configuration: in envelope mode the key provider's own master key source (one
 * cache, one read of the secret), else the master key secret MASTER_KEY_SECRET_ID read on its own.
 */
export function auditKeyringFromConfig(
  config: Pick<TessConfig, 'keys'>,
  provider?: ConfiguredKeyProvider,
): AuditKeyring {
  if (provider instanceof EnvelopeKeyProvider) {
    return new AuditKeyring(provider.source, provider.providerName, false);
  }
  const { keys } = config;
  if (keys.provider === 'local') {
    return new AuditKeyring(new LocalFileMasterKeySource({ path: keys.masterKeyFile }), 'local');
  }
  return new AuditKeyring(
    new AwsSecretsMasterKeySource({
      region: keys.secretsManagerRegion,
      endpoint: keys.secretsManagerEndpoint,
      secretId: keys.masterKeySecretId,
    }),
    'aws-sm',
  );
}
