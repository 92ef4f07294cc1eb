export * from './data-source.js';
export { AUDIT_KEYRING, DatabaseModule } from './database.module.js';
export * from './database-unavailable.js';
export * from './entities/index.js';
export { MIGRATIONS } from './migrations/index.js';
export * from './prepared-statement.js';
export * from './repositories/index.js';
