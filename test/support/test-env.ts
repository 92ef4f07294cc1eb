import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  createRedisClient,
  deleteKeysWithPrefix,
  ensureDatabase,
  loadConfig,
  type TessConfig,
} from '#common';

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestEnv {
  id: string;
  config: TessConfig;
  /** The environment the config was built from (to start real processes with the same settings). */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

async function dropDatabase(name: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/**
 * A private world for one test file: its own PostgreSQL database, Redis key prefix (sessions,
 * throttles and queues all live under it) and data/temp directories; `cleanup` removes all of it.
 */
export async function createTestEnv(overrides: Record<string, string> = {}): Promise<TestEnv> {
  const id = randomBytes(5).toString('hex');
  const database = `tess_test_${id}`;
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  await ensureDatabase(url.toString());
  const dataDir = await mkdtemp(join(tmpdir(), `tess-test-${id}-`));
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'error',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: url.toString(),
    DATABASE_POOL_SIZE: '4',
    REDIS_URL,
    REDIS_PREFIX: `tess-test-${id}`,
    DATA_DIR: dataDir,
    ...overrides,
  };
  const config = loadConfig(env);
  return {
    id,
    config,
    env,
    async cleanup() {
      const redis = createRedisClient(REDIS_URL);
      await redis.connect();
      await deleteKeysWithPrefix(redis, `${env.REDIS_PREFIX}:`);
      redis.disconnect();
      await dropDatabase(database);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
