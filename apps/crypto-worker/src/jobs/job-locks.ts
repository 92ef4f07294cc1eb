import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import pg from 'pg';
import { type LockFence, TESS_CONFIG, type TessConfig } from '#common';

/** What `tryExclusive` answers when another run holds the lock. */
export const BUSY = Symbol('busy');

/** What a run holding a lock gets: a signal that aborts when the lock is lost, and the fence proving it. */
export interface HeldLock {
  /** Aborted (with a LockLostError) when the lock's session ends while the run holds it. */
  readonly signal: AbortSignal;
  /** The lock's session and key, for commits that must only happen while it is held. */
  readonly fence: LockFence;
}

/**
 * The lock's PostgreSQL session ended while a run held it (the connection was killed server-side, the
 * database restarted, the network cut): another run may own the file now. The run stops writing, records
 * nothing, and BullMQ's retry converges (docs/security.md item 34).
 */
export class LockLostError extends Error {
  override readonly name = 'LockLostError';
  constructor(lockName: string) {
    super(
      `Lost the lock on ${lockName} (its database session ended); stopping this run, a retry will finish it`,
    );
  }
}

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
 * (up to WORKER_CONCURRENCY + PIPELINE_CONCURRENCY idle ones) once their lock is confirmed released.
 */
@Injectable()
export class JobLocks implements OnApplicationShutdown {
  private readonly logger = new Logger('JobLocks');
  /** Lock sessions between jobs: opening a PostgreSQL session per job costs more than a small job. */
  private readonly idle: LockSession[] = [];
  private closed = false;

  constructor(@Inject(TESS_CONFIG) private readonly config: TessConfig) {}

  async exclusive<T>(
    name: string,
    signal: AbortSignal | undefined,
    run: (lock: HeldLock) => Promise<T>,
  ): Promise<T> {
    return (await this.hold(name, signal, true, run)) as T;
  }

  /** Like `exclusive`, but never waits: `busy` when another run holds the lock (run is not called). */
  tryExclusive<T>(
    name: string,
    signal: AbortSignal | undefined,
    run: (lock: HeldLock) => Promise<T>,
  ): Promise<T | typeof BUSY> {
    return this.hold(name, signal, false, run);
  }

  private async hold<T>(
    name: string,
    signal: AbortSignal | undefined,
    wait: boolean,
    run: (lock: HeldLock) => Promise<T>,
  ): Promise<T | typeof BUSY> {
    const session = await this.session();
    const key = `tess:${name}`;
    let locked = false;
    const lost = new AbortController();
    const onLost = (): void => {
      if (locked) lost.abort(new LockLostError(name));
    };
    session.onBroken = onLost;
    try {
      // Named statements: parsed once per lock session, which runs them for every job.
      const { rows } = await session.client.query<{ locked: boolean }>({
        name: 'tess_job_lock_try',
        text: 'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        values: [key],
      });
      if (!rows[0]?.locked) {
        if (!wait) return BUSY;
        // Routine with pipelined uploads (the encrypt-file job waits for the follower that is committing).
        this.logger.log(`${name} is being processed by another run; waiting for it to finish`);
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
      if (session.broken) onLost();
      const held: HeldLock = {
        signal: signal ? AbortSignal.any([signal, lost.signal]) : lost.signal,
        fence: { pid: session.pid, key },
      };
      return await run(held);
    } finally {
      session.onBroken = undefined;
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
      pid: 0,
      end() {
        session.broken = true;
        void client.end().catch(() => undefined);
      },
    };
    // A session that breaks while a run holds its lock aborts that run; an idle one is dropped when next
    // taken; never crash the process for it.
    const broke = (): void => {
      session.broken = true;
      session.onBroken?.();
    };
    client.on('error', broke);
    client.on('end', broke);
    try {
      await client.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      session.pid = rows[0]!.pid;
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
        const { rows } = await session.client.query<{ unlocked: boolean }>({
          name: 'tess_job_lock_release',
          text: 'SELECT pg_advisory_unlock(hashtextextended($1, 0)) AS unlocked',
          values: [key],
        });
        clean = rows[0]?.unlocked === true;
      } catch {
        clean = false;
      }
    }
    if (
      clean &&
      !session.broken &&
      this.idle.length < this.config.worker.concurrency + this.config.pipeline.concurrency
    ) {
      this.idle.push(session);
    } else {
      session.end();
    }
  }
}

interface LockSession {
  readonly client: pg.Client;
  broken: boolean;
  /** The backend pid holding this session's locks (pg_locks.pid). */
  pid: number;
  /** Called when the session breaks (set while a run holds a lock on it). */
  onBroken?: () => void;
  end(): void;
}
