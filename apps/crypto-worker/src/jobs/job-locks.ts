import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { TESS_CONFIG, type TessConfig } from '#common';

/**
 * One run per lock name at a time (for encrypt-file: per file), across every worker process: a PostgreSQL
 * session advisory lock on the name, held on a dedicated connection (outside the pool, so jobs holding locks can never starve the
 * pool their own queries need) for the whole run, failure recording included.
 *
 * Why: BullMQ delivers at least once. A worker that stops renewing its job lock while still alive (a long
 * pause, a Redis partition) has its job handed to another worker, and a producer may enqueue the same file
 * twice. Without this, the second run aborts the first one's multipart upload, both write the same object
 * key under different data keys, and the loser's failure handling resets or deletes what the winner stored.
 * With it, the second run waits and then finds the file stored (a no-op). A worker that dies loses its
 * connection and with it the lock, so crash recovery is not delayed. Sessions are reused between jobs
 * (up to WORKER_CONCURRENCY idle ones) once their lock is confirmed released.
 */
@Injectable()
export class JobLocks implements OnApplicationShutdown {
  private readonly logger = new Logger('JobLocks');
  /** Lock sessions between jobs: opening a PostgreSQL session per job costs more than a small job. */
  private readonly idle: LockSession[] = [];
  private closed = false;

  constructor(@Inject(TESS_CONFIG) private readonly config: TessConfig) {}

  async exclusive<T>(name: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    const session = await this.session();
    const key = `tess:${name}`;
    let locked = false;
    try {
      const { rows } = await session.client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [key],
      );
      if (!rows[0]?.locked) {
        this.logger.warn(`${name} is being processed by another run; waiting for it to finish`);
        // Ending the session is the only way to stop waiting for the lock.
        const stop = (): void => session.end();
        signal?.addEventListener('abort', stop, { once: true });
        try {
          await session.client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
        } finally {
          signal?.removeEventListener('abort', stop);
        }
        signal?.throwIfAborted();
      }
      locked = true;
      return await run();
    } finally {
      await this.giveBack(session, locked ? key : null);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    for (const session of this.idle.splice(0)) session.end();
  }

  private async session(): Promise<LockSession> {
    for (let session = this.idle.pop(); session; session = this.idle.pop()) {
      if (!session.broken) return session;
    }
    const client = new pg.Client({
      connectionString: this.config.database.url,
      connectionTimeoutMillis: 5_000,
    });
    const session: LockSession = {
      client,
      broken: false,
      end() {
        session.broken = true;
        void client.end().catch(() => undefined);
      },
    };
    // An idle session that breaks is dropped when next taken; never crash the process for it.
    client.on('error', () => {
      session.broken = true;
    });
    client.on('end', () => {
      session.broken = true;
    });
    try {
      await client.connect();
    } catch (error) {
      session.end();
      throw error;
    }
    return session;
  }

  /**
   * Unlocks and keeps the session for the next job, or ends it (which releases any lock it holds) when
   * the unlock cannot be confirmed, the session broke, or enough sessions are idle already.
   */
  private async giveBack(session: LockSession, key: string | null): Promise<void> {
    let clean = !session.broken && !this.closed;
    if (clean && key !== null) {
      try {
        const { rows } = await session.client.query<{ unlocked: boolean }>(
          'SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS unlocked',
          [key],
        );
        clean = rows[0]?.unlocked === true;
      } catch {
        clean = false;
      }
    }
    if (clean && !session.broken && this.idle.length < this.config.worker.concurrency) {
      this.idle.push(session);
    } else {
      session.end();
    }
  }
}

interface LockSession {
  readonly client: pg.Client;
  broken: boolean;
  end(): void;
}
