import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import type { World } from '../support/world.js';

/**
 * The drill's loss of the database: writes the operator's export (`exportSql`, one JSON value) to
 * `<DATA_DIR>/names.json`, stops the worker and drops the world's database. Returns the export's path.
 */
export async function exportNamesAndDropDatabase(world: World, exportSql: string): Promise<string> {
  const [{ names }] = await world.dataSource.query(exportSql);
  const namesFile = join(world.config.dataDir, 'names.json');
  await writeFile(namesFile, JSON.stringify(names));
  await world.stopInProcessWorker();
  const admin = new URL(world.config.database.url);
  const database = admin.pathname.slice(1);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`DROP DATABASE ${pg.escapeIdentifier(database)} WITH (FORCE)`);
  await client.end();
  return namesFile;
}
