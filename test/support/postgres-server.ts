import { execFile } from 'node:child_process';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';

const run = promisify(execFile);

/**
 * A private PostgreSQL cluster (initdb into a temp directory, a free loopback port, trust auth) for tests
 * that stop and start the database; the shared server is never touched. PostgreSQL refuses to run as
 * root, so as root the cluster belongs to (and runs as) the `postgres` user.
 */
export interface PostgresServer {
  port: number;
  /** The maintenance database's URL (`postgres`); tests create theirs from it. */
  adminUrl: string;
  /** Fast shutdown: every session is terminated. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

async function binDir(): Promise<string> {
  const versions = (await readdir('/usr/lib/postgresql')).sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error('No PostgreSQL server binaries under /usr/lib/postgresql');
  return join('/usr/lib/postgresql', versions[0], 'bin');
}

async function postgresUser(): Promise<{ uid: number; gid: number } | null> {
  if (process.getuid?.() !== 0) return null;
  const { stdout: uid } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = await binDir();
  const owner = await postgresUser();
  const dir = await mkdtemp(join(tmpdir(), 'tess-pg-'));
  if (owner) await chown(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  const as = (command: string, args: string[]) =>
    owner
      ? run('runuser', ['-u', 'postgres', '--', join(bin, command), ...args])
      : run(join(bin, command), args);
  await as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`;
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let running = false;
  const server: PostgresServer = {
    port,
    adminUrl,
    async start() {
      await as('pg_ctl', ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '30', 'start']);
      running = true;
      // pg_ctl -w returns once it accepts connections; make sure one works before going on.
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.end();
    },
    async stop() {
      if (!running) return;
      await as('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
      running = false;
    },
    async dispose() {
      await server.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
