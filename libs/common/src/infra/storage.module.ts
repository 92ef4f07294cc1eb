import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { TESS_CONFIG } from '../config/config.module.js';
import type { TessConfig } from '../config/config.schema.js';
import { type ConfiguredKeyProvider, createKeyProvider } from '../keys/index.js';
import { createObjectStore, type ObjectStore } from '../storage/index.js';

/** Injection token for the configured {@link ObjectStore}. */
export const OBJECT_STORE = Symbol('OBJECT_STORE');
/** Injection token for the configured key provider (envelope or per-file-secret). */
export const KEY_PROVIDER = Symbol('KEY_PROVIDER');

export function objectStoreFromConfig(config: TessConfig): ObjectStore {
  return createObjectStore(config.storage);
}

export function keyProviderFromConfig(config: TessConfig): ConfiguredKeyProvider {
  const { keys } = config;
  if (keys.provider === 'local')
    return createKeyProvider({ provider: 'local', masterKeyFile: keys.masterKeyFile, mode: 'envelope' });
  return createKeyProvider({
    provider: 'aws-secrets-manager',
    region: keys.secretsManagerRegion,
    endpoint: keys.secretsManagerEndpoint,
    secretId: keys.masterKeySecretId,
    prefix: keys.secretPrefix,
    mode: keys.mode,
  });
}

/** The object store and key provider, built once from config and shared by every service of an app. */
@Global()
@Module({
  providers: [
    { provide: OBJECT_STORE, inject: [TESS_CONFIG], useFactory: objectStoreFromConfig },
    { provide: KEY_PROVIDER, inject: [TESS_CONFIG], useFactory: keyProviderFromConfig },
  ],
  exports: [OBJECT_STORE, KEY_PROVIDER],
})
export class StorageModule implements OnApplicationShutdown {
  constructor(
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.store.close(), this.keys.close()]);
  }
}
