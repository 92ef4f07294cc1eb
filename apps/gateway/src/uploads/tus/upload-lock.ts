import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Deletes the key only while it still holds our token (another holder's lock is never released). */
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
/** Extends the key's life only while it still holds our token. */
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

export interface HeldLock {
  /** Aborted when the lock could not be renewed (Redis unreachable, or the key expired meanwhile). */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

/**
 * One writer per resumable upload across every gateway replica: a Redis key per upload (SET NX PX with a
 * random token), renewed while the request runs and deleted by its holder only, so any replica can serve
 * any PATCH without sticky sessions. A holder that dies stops renewing and its lock expires after `ttlMs`.
 *
 * Hand-written on purpose: it is three commands against the one Redis TESS already depends on; the
 * multi-master Redlock algorithm (the `redlock` package, whose 5.x line has stayed in beta since 2022)
 * adds nothing with a single Redis.
 */
export class UploadLocks {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttlMs = 15_000,
  ) {}

  /** The lock of upload `id`, or null while another request holds it. */
  async acquire(id: string): Promise<HeldLock | null> {
    const key = `${this.prefix}:${id}`;
    const token = randomBytes(16).toString('hex');
    const ok = await this.redis.set(key, token, 'PX', this.ttlMs, 'NX');
    if (ok !== 'OK') return null;
    const lost = new AbortController();
    const timer = setInterval(() => {
      this.redis.eval(RENEW, 1, key, token, String(this.ttlMs)).then(
        (renewed) => {
          if (renewed !== 1) lost.abort(new Error('the upload lock expired'));
        },
        (error: Error) => lost.abort(error),
      );
    }, this.ttlMs / 3);
    timer.unref();
    let released = false;
    return {
      lost: lost.signal,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await this.redis.eval(RELEASE, 1, key, token).catch(() => undefined);
      },
    };
  }
}
