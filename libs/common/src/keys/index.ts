import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AwsSecretsMasterKeySource } from './aws-secrets.master-key-source.js';
import { EnvelopeKeyProvider } from './envelope.key-provider.js';
import { LocalFileMasterKeySource } from './local-file.master-key-source.js';
import { PerFileSecretKeyProvider } from './per-file-secret.key-provider.js';
import type { RetryOptions, SecretsManagerConnectionOptions } from './secrets-manager.client.js';

export * from './aws-secrets.master-key-source.js';
export * from './envelope.key-provider.js';
export * from './key-provider.js';
export * from './local-file.master-key-source.js';
export * from './master-key-source.js';
export * from './per-file-secret.key-provider.js';
export * from './secrets-manager.client.js';

/** `KEY_PROVIDER=local`: the keyring file (MASTER_KEY_FILE, default DATA_DIR/master.key). */
export interface LocalKeySourceOptions extends MasterKeyRefreshOptions {
  provider: 'local';
  masterKeyFile: string;
}

/** Envelope mode: see the master key sources' options of the same names. */
export interface MasterKeyRefreshOptions {
  /** Create the master key when absent (default true). */
  createIfMissing?: boolean;
  /** Re-read which master key version is current after this many ms (default: never, i.e. on restart). */
  refreshCurrentAfterMs?: number;
}

/** `KEY_PROVIDER=aws-secrets-manager`. */
export interface AwsKeySourceOptions extends MasterKeyRefreshOptions {
  provider: 'aws-secrets-manager';
  region: string;
  /** SECRETS_MANAGER_ENDPOINT. */
  endpoint?: string;
  /** The master key secret (MASTER_KEY_SECRET_ID); required in envelope mode, unused in per-file-secret. */
  secretId?: string;
  /** Per-file-secret mode: secret names are `<prefix>/files/<fileId>` (default `tess`). */
  prefix?: string;
  credentials?: SecretsManagerConnectionOptions['credentials'];
  client?: SecretsManagerClient;
  retry?: RetryOptions;
}

export type KeyMode = 'envelope' | 'per-file-secret';

export type CreateKeyProviderOptions = (LocalKeySourceOptions | AwsKeySourceOptions) & { mode: KeyMode };

/** The configured provider: envelope (with `rewrap`/`rotateMasterKey`) or per-file-secret; narrow on `mode`. */
export type ConfiguredKeyProvider = EnvelopeKeyProvider | PerFileSecretKeyProvider;

/**
 * Builds the key provider from validated configuration. Per-file-secret mode needs Secrets Manager; the
 * local key file only supports envelope mode.
 */
export function createKeyProvider(
  options: (LocalKeySourceOptions | AwsKeySourceOptions) & { mode: 'envelope' },
): EnvelopeKeyProvider;
export function createKeyProvider(
  options: AwsKeySourceOptions & { mode: 'per-file-secret' },
): PerFileSecretKeyProvider;
export function createKeyProvider(options: CreateKeyProviderOptions): ConfiguredKeyProvider;
export function createKeyProvider(options: CreateKeyProviderOptions): ConfiguredKeyProvider {
  if (options.mode !== 'envelope' && options.mode !== 'per-file-secret') {
    throw new Error(`Unknown key mode "${String(options.mode)}": use "envelope" or "per-file-secret"`);
  }
  if (options.provider === 'local') {
    if (options.mode === 'per-file-secret') {
      throw new Error(
        'Key mode "per-file-secret" stores every data key in AWS Secrets Manager: ' +
          'it needs KEY_PROVIDER=aws-secrets-manager, not the local key file',
      );
    }
    return new EnvelopeKeyProvider(
      new LocalFileMasterKeySource({
        path: options.masterKeyFile,
        createIfMissing: options.createIfMissing,
        refreshCurrentAfterMs: options.refreshCurrentAfterMs,
      }),
      'local',
    );
  }
  if (options.provider !== 'aws-secrets-manager') {
    throw new Error(
      `Unknown key provider "${String((options as { provider: unknown }).provider)}": use "local" or "aws-secrets-manager"`,
    );
  }
  const connection: SecretsManagerConnectionOptions = {
    region: options.region,
    endpoint: options.endpoint,
    credentials: options.credentials,
    client: options.client,
    retry: options.retry,
  };
  if (options.mode === 'per-file-secret') {
    return new PerFileSecretKeyProvider({ ...connection, prefix: options.prefix });
  }
  if (!options.secretId) {
    throw new Error(
      'Envelope mode with AWS Secrets Manager needs the master key secret id (MASTER_KEY_SECRET_ID)',
    );
  }
  return new EnvelopeKeyProvider(
    new AwsSecretsMasterKeySource({
      ...connection,
      secretId: options.secretId,
      createIfMissing: options.createIfMissing,
      refreshCurrentAfterMs: options.refreshCurrentAfterMs,
    }),
    'aws-sm',
  );
}
