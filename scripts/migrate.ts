import 'reflect-metadata';
import {
  createDataSource,
  describeDatabaseError,
  ensureDatabase,
  loadConfig,
  migrate,
  redactUrl,
} from '#common';

/** `npm run migrate` applies pending migrations; `npm run migrate:revert` undoes the newest one. */
async function main(): Promise<void> {
  const command = process.argv[2] ?? 'up';
  const config = loadConfig();
  try {
    if (command === 'up' && (await ensureDatabase(config.database.url))) {
      console.log(`Created database ${redactUrl(config.database.url)}`);
    }
  } catch (error) {
    throw new Error(describeDatabaseError(config.database.url, error));
  }
  const dataSource = createDataSource(config);
  await dataSource.initialize();
  try {
    if (command === 'up') {
      const applied = await migrate(dataSource);
      console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'The database schema is up to date.');
    } else if (command === 'revert') {
      await dataSource.undoLastMigration({ transaction: 'each' });
      console.log('Reverted the newest migration.');
    } else {
      throw new Error(`Unknown command "${command}": use up or revert.`);
    }
  } finally {
    await dataSource.destroy();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
