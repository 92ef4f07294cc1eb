import { Inject, Injectable, Logger } from '@nestjs/common';
import pg from 'pg';
import { TESS_CONFIG, type TessConfig } from '#common';

/**
 * One run per file at a time, across every worker process: a PostgreSQL session advisory lock on the
 * file id, held on a dedicated connection (outside the pool, so jobs holding locks can never starve the
 * pool their own queries need) for the whole run, failure recording included.
 *
 * Why: BullMQ delivers at least once. A worker that stops renewing its job lock while still alive (a long
 * pause, a Redis partition) has its job handed to another worker, and a producer may enqueue the same file
 * twice. Without this, the second run aborts the first one's multipart upload, both write the same object
 * key under different data keys, and the loser's failure handling resets or deletes what the winner stored.
 * With it, the second run waits and then finds the file stored (a no-op). A worker that dies loses its
 * connection and with it the lock, so crash recovery is not delayed.
 */
@Injectable()
export class FileLocks {
  private readonly logger = new Logger('FileLocks');

  constructor(@Inject(TESS_CONFIG) private readonly config: TessConfig) {}

  async exclusive<T>(fileId: string, signal: AbortSignal | undefined, run: () => Promise<T>): Promise<T> {
    const client = new pg.Client({
      connectionString: this.config.database.url,
      connectionTimeoutMillis: 5_000,
    });
    // Errors of an idle client are reported by the next query; never crash the process for them.
    client.on('error', () => undefined);
    const release = (): void => void client.end().catch(() => undefined);
    await client.connect();
    try {
      const key = `tess:encrypt-file:${fileId}`;
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [key],
      );
      if (!rows[0]?.locked) {
        this.logger.warn(`file ${fileId} is being processed by another run; waiting for it to finish`);
        signal?.addEventListener('abort', release, { once: true });
        try {
          await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
        } finally {
          signal?.removeEventListener('abort', release);
        }
        signal?.throwIfAborted();
      }
      return await run();
    } finally {
      // Ending the session releases the lock.
      release();
    }
  }
}
