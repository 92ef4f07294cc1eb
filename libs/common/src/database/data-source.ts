import pg from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { TessConfig } from '../config/config.schema.js';
import { ENTITIES } from './entities/index.js';
import { MIGRATIONS } from './migrations/index.js';

/** Arbitrary constant identifying TESS migrations in pg_advisory_lock. */
const MIGRATION_LOCK_KEY = 7_305_127_001;

export function dataSourceOptions(config: Pick<TessConfig, 'database'>): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.database.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    migrationsRun: false,
    synchronize: false,
    extra: { max: config.database.poolSize, connectionTimeoutMillis: 5_000 },
  };
}

/** A readable explanation for an unreachable database, naming the URL (without its password). */
export function describeDatabaseError(url: string, error: unknown): string {
  const safe = redactUrl(url);
  const code = (error as { code?: string }).code;
  if (code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return (
      `PostgreSQL is not reachable at ${safe} (${code}). Start it: ` +
      '`docker compose up -d postgres`, or on Debian `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`; ' +
      'or point DATABASE_URL at your server.'
    );
  }
  if (code === '3D000')
    return `The database in ${safe} does not exist. Run \`npm run migrate\` to create it.`;
  if (code === '28P01' || code === '28000')
    return `PostgreSQL refused the credentials in DATABASE_URL (${safe}).`;
  return `PostgreSQL at ${safe} failed: ${(error as Error).message}`;
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Creates the database named in `url` if it does not exist (connecting to the `postgres` maintenance DB). */
export async function ensureDatabase(url: string): Promise<boolean> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return false;
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    return true;
  } catch (error) {
    // Another process created it between our check and CREATE.
    if ((error as { code?: string }).code === '42P04') return false;
    throw error;
  } finally {
    await client.end();
  }
}

/**
 * Applies pending migrations while holding a Postgres advisory lock, so several gateway replicas
 * starting together apply each migration exactly once. Returns the names applied.
 */
export async function migrate(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await runner.release();
  }
}

export function createDataSource(config: Pick<TessConfig, 'database'>): DataSource {
  return new DataSource(dataSourceOptions(config));
}
