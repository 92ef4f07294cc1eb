import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import {
  ConfigError,
  createRedisClient,
  describeDatabaseError,
  describeRedisError,
  ensureDatabase,
  loadConfig,
  type TessConfig,
  waitForRedis,
} from '#common';
import { createGatewayApp } from './app.factory.js';

/** Checks Postgres and Redis first so an operator gets one actionable sentence instead of a stack trace. */
async function checkDependencies(config: TessConfig): Promise<void> {
  try {
    await ensureDatabase(config.database.url);
  } catch (error) {
    throw new Error(describeDatabaseError(config.database.url, error));
  }
  const redis = createRedisClient(config.redis.url, { retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await waitForRedis(redis, 5_000);
  } catch (error) {
    throw new Error(describeRedisError(config.redis.url, error));
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  await checkDependencies(config);
  const app = await createGatewayApp(config);
  await app.listen(config.http.port, config.http.host);
  new Logger('Gateway').log(
    `TESS gateway listening on ${config.http.publicUrl} (Node.js ${process.version})`,
  );
}

main().catch((error: unknown) => {
  const message = error instanceof ConfigError || error instanceof Error ? error.message : String(error);
  console.error(`\nTESS gateway could not start:\n${message}\n`);
  process.exit(1);
});
