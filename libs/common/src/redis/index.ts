export { createRedisClient, deleteKeysWithPrefix, describeRedisError, waitForRedis } from './redis.js';
