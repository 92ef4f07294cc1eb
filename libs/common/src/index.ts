export * from './config/index.js';
export * from './contracts/index.js';
export * from './database/index.js';
export * from './format/index.js';
export * from './infra/storage.module.js';
export * from './keys/index.js';
export * from './redis/index.js';
export * from './storage/index.js';
export { withTimeout } from './util/with-timeout.js';
