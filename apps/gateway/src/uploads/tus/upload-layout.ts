import type { Redis } from 'ioredis';
import type { StagingResumePoint } from '#common';

/**
 * Where each unfinished resumable upload's staging file ends (its writer's resume point), in Redis next to
 * the upload locks, so a PATCH or HEAD on any replica starts from there instead of walking every staged
 * record: a PATCH then costs its own bytes, not the whole upload's. Written under the upload's lock after
 * each append has reached the disk; only a hint: the staging code checks it against the file and walks
 * the whole file when it does not fit (a lost or stale key costs one walk, never a wrong offset).
 */
export class UploadLayouts {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The kept point, or null (none yet, expired, Redis lost it, or not a point at all). */
  async get(id: string): Promise<StagingResumePoint | null> {
    const raw = await this.redis.get(this.key(id)).catch(() => null);
    if (!raw) return null;
    try {
      const value = JSON.parse(raw) as Partial<StagingResumePoint>;
      const { dataRecords, dataLength, dataEnd, lastRecordStart } = value;
      if (![dataRecords, dataLength, dataEnd].every(Number.isSafeInteger)) return null;
      if (lastRecordStart !== null && !Number.isSafeInteger(lastRecordStart)) return null;
      return value as StagingResumePoint;
    } catch {
      return null;
    }
  }

  /** Keeps `point` until `expiresAt` (the upload's own expiry); a failure only costs the next PATCH a walk. */
  async set(id: string, point: StagingResumePoint | null, expiresAt: Date | null): Promise<void> {
    if (!point) return;
    const ttl = Math.max((expiresAt?.getTime() ?? Date.now()) - Date.now(), 0) + 60_000;
    await this.redis.set(this.key(id), JSON.stringify(point), 'PX', ttl).catch(() => undefined);
  }

  async delete(id: string): Promise<void> {
    await this.redis.del(this.key(id)).catch(() => undefined);
  }

  private key(id: string): string {
    return `${this.prefix}:${id}`;
  }
}
