import { LocalObjectStore, type LocalObjectStoreOptions } from './local.object-store.js';
import type { ObjectStore } from './object-store.js';
import { S3ObjectStore, type S3StoreConfig } from './s3/s3.object-store.js';

export * from './local.object-store.js';
export * from './object-keys.js';
export * from './object-store.js';
export * from './s3/index.js';

/** The store selected by `STORAGE_DRIVER` with its settings: the shape of `TessConfig.storage`. */
export type ObjectStoreConfig =
  | ({ driver: 'local' } & LocalObjectStoreOptions)
  | ({ driver: 's3' } & S3StoreConfig);

/** Builds the store selected by `STORAGE_DRIVER`; the options are validated by the constructors. */
export function createObjectStore(config: ObjectStoreConfig): ObjectStore {
  switch (config.driver) {
    case 'local':
      return new LocalObjectStore(config);
    case 's3':
      return new S3ObjectStore(config);
  }
}
