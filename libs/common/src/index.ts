export * from './config/index.js';
export * from './database/index.js';
export * from './redis/index.js';
