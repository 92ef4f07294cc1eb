import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { Redis } from 'ioredis';
import {
  type ConfiguredKeyProvider,
  createRedisClient,
  type EncryptFileResult,
  type FileEntity,
  FileRepository,
  type FollowHint,
  followHintKey,
  isFollowHint,
  KEY_PROVIDER,
  OBJECT_STORE,
  type ObjectStore,
  objectKeyFor,
  StagingFollower,
  StagingFollowStopped,
  TESS_CONFIG,
  type TessConfig,
  type WrappedDataKey,
} from '#common';
import type { HandlerJob, JobHandler } from '../jobs/job-handler.js';
import { BUSY, JobLocks } from '../jobs/job-locks.js';
import { EncryptFileHandler, readableError } from './encrypt-file.handler.js';
import { FollowedPlaintext } from './plaintext-source.js';
import type { TappedFile } from './taps/plaintext-taps.js';

type FollowFileJob = HandlerJob<'follow-file'>;

/**
 * How soon a starved follower looks for new bytes (a stat of the file and of its path), and at most how
 * long it pauses between looks (the pause doubles while nothing comes). Measured on a follower starved for
 * 3 s: polling every 5 ms cost 118 ms of CPU, backing off from 2 to 50 ms 18 ms.
 */
const POLL_MS = 2;
const MAX_POLL_MS = 50;
/** How often, and how long at most, a follower that read the seal asks whether the upload was accepted. */
const ACCEPT_POLL_MS = 10;
const ACCEPT_WAIT_MS = 30_000;

/** Why a follower ended without storing the file; the encrypt-file job then does everything as always. */
class GaveUp extends Error {
  override readonly name = 'GaveUp';
}

/**
 * A follower (docs/security.md item 40, "Pipelined uploads"): it runs the normal pass on an upload while the
 * upload still arrives, so the object is written, part by part, as the client sends it, and commits the
 * file moments after the last byte, exactly as the encrypt-file job would (same taps, same store put, same
 * commit under the same lock and fence). It commits only when everything is final: an authenticated seal
 * was read, the gateway accepted the upload (the row is `queued`, after its fsync), the file still holds
 * exactly the records that were read, and the object is complete. Anything else ends it without touching
 * the row: its own partial object is aborted (the store does that when the body fails) or removed, and the
 * encrypt-file job, enqueued at the seal as always, does everything as if there had been no follower.
 */
@Injectable()
export class FollowFileHandler
  implements JobHandler<'follow-file'>, OnApplicationBootstrap, OnApplicationShutdown
{
  private readonly logger = new Logger(FollowFileHandler.name);
  private readonly redis: Redis;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
    private readonly locks: JobLocks,
    private readonly encrypt: EncryptFileHandler,
  ) {
    this.redis = createRedisClient(config.redis.url);
    this.redis.on('error', () => undefined);
  }

  onApplicationBootstrap(): void {
    this.redis.connect().catch(() => undefined);
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }

  outcome(result: EncryptFileResult): string {
    return result.skipped ? 'followed-gave-up' : 'followed-stored';
  }

  /** A follower never decides a file's fate: there is nothing to record. */
  async onFailed(): Promise<void> {}

  /**
   * No `lockName`: the follower takes the file's lock itself, and only if it is free (a follower that
   * would wait for an encrypt-file run has nothing left to gain).
   */
  async run(job: FollowFileJob, signal?: AbortSignal): Promise<EncryptFileResult> {
    const { fileId } = job.data;
    const gaveUp: EncryptFileResult = {
      fileId,
      sha1: '',
      sha256: '',
      size: 0,
      encryptedSize: 0,
      skipped: true,
    };
    try {
      const held = await this.locks.tryExclusive(this.encrypt.lockName(job.data), signal, (lock) =>
        this.follow({ ...job, fence: lock.fence }, lock.signal),
      );
      if (held === BUSY) throw new GaveUp('another run holds the file');
      return held;
    } catch (error) {
      this.logger.log(`follower of ${fileId} gave up: ${readableError(error as Error)}`);
      return gaveUp;
    } finally {
      await this.redis.del(followHintKey(this.config.redis.prefix, fileId)).catch(() => undefined);
    }
  }

  private async follow(job: FollowFileJob, signal: AbortSignal): Promise<EncryptFileResult> {
    const { fileId, ownerId } = job.data;
    const row = await this.files.findById(fileId);
    // A row past receiving is the encrypt-file job's (sealed before this follower started, or finished).
    if (row && row.status !== 'receiving') throw new GaveUp(`the upload is ${row.status} already`);
    if (row && row.ownerId !== ownerId) throw new GaveUp('the job names another owner');
    const { wrapped, declaredSize } = row
      ? { wrapped: wrappedOf(row), declaredSize: row.size }
      : await this.hint(fileId, ownerId);
    const tempPath = this.encrypt.tempPathOf({ id: fileId, tempPath: row?.tempPath ?? null });
    const dataKey = await this.keys.unwrapDataKey(fileId, wrapped);
    const key = objectKeyFor(fileId);
    // What the taps are told until the upload is accepted; then the row's final facts replace it.
    const file: TappedFile & Pick<FileEntity, 'clientSha256'> = {
      size: declaredSize,
      filename: row?.filename ?? '',
      contentType: row?.contentType ?? 'application/octet-stream',
      clientSha256: row?.clientSha256 ?? null,
    };
    let source: FollowedPlaintext | undefined;
    let claimed: FileEntity | undefined;
    /** When the seal was read and when the upload was accepted: what is left after the last byte. */
    let sealedAt = 0;
    let acceptedAt = 0;
    let written = false;
    try {
      const follower = await StagingFollower.open(tempPath, {
        dataKey,
        fileId,
        idleMs: this.config.pipeline.idleMs,
        pollMs: POLL_MS,
        maxPollMs: MAX_POLL_MS,
        signal,
      });
      source = new FollowedPlaintext(follower, async () => {
        sealedAt = Date.now();
        await this.accepted(fileId, follower.length, wrapped, tempPath, signal);
        acceptedAt = Date.now();
        // Claimed as the encrypt-file job claims it (queued -> processing): from here on the file is being
        // processed, as far as anyone can see; should this follower fail, that job claims it again.
        claimed = (await this.files.claimForProcessing(fileId)) ?? undefined;
        if (!claimed) throw new GaveUp('the upload is gone');
        Object.assign(file, {
          size: claimed.size,
          filename: claimed.filename,
          contentType: claimed.contentType,
          clientSha256: claimed.clientSha256,
        });
      });
      this.logger.log(`job ${job.id}: following upload ${fileId} while it arrives`);
      await this.store.abortIncomplete(key);
      const pass = await this.encrypt.encryptAndStore(job, source, key, dataKey, wrapped, file, signal);
      written = true;
      // The pass ends only after the claim; then the same commit as the encrypt-file job's (fenced).
      if (!claimed) throw new GaveUp('the upload was not claimed');
      const outcome = await this.encrypt.markStored(job, claimed, key, wrapped, pass, signal);
      written = false;
      if ('skipped' in outcome) return outcome.skipped;
      this.logger.log(
        `job ${job.id}: committed upload ${fileId} ${Date.now() - sealedAt} ms after reading its seal ` +
          `(${acceptedAt - sealedAt} ms of it waiting for the gateway to accept it)`,
      );
      return await this.encrypt.announceStored(job, claimed, pass, outcome.committed);
    } catch (error) {
      // A finished object that was never committed is removed; with the lock lost it may be another run's.
      if (written && !signal.aborted) await this.store.delete(key).catch(() => undefined);
      throw error;
    } finally {
      dataKey.fill(0);
      await source?.close().catch(() => undefined);
    }
  }

  /** The wrapped key a multipart upload was staged under (the follow hint), before the upload has a row. */
  private async hint(
    fileId: string,
    ownerId: string,
  ): Promise<{ wrapped: WrappedDataKey; declaredSize: number }> {
    const raw = await this.redis.get(followHintKey(this.config.redis.prefix, fileId));
    const hint: unknown = raw ? JSON.parse(raw) : null;
    if (!isFollowHint(hint) || hint.ownerId !== ownerId)
      throw new GaveUp('the upload has no row and no hint');
    return { wrapped: wrappedOfHint(hint), declaredSize: hint.declaredSize };
  }

  /**
   * Waits until the gateway accepted the upload (its row `queued`: after the seal's fsync, the quota and
   * the enqueue of the encrypt-file job) and checks that the row is the upload that was followed: the same
   * key and as many bytes as the records held. Gives up when the staged file goes away (the request failed
   * after its last byte) or the row goes anywhere else.
   */
  private async accepted(
    fileId: string,
    length: number,
    wrapped: WrappedDataKey,
    tempPath: string,
    signal: AbortSignal,
  ): Promise<void> {
    const deadline = Date.now() + ACCEPT_WAIT_MS;
    for (;;) {
      signal.throwIfAborted();
      const row = await this.files.findById(fileId);
      if (row?.status === 'queued') {
        if (!sameKey(wrappedOf(row), wrapped)) throw new GaveUp('the accepted upload has another key');
        if (row.size !== length) throw new GaveUp(`the accepted upload has ${row.size} bytes, not ${length}`);
        return;
      }
      if (row && row.status !== 'receiving') throw new GaveUp(`the upload is ${row.status}`);
      if (!(await stillStaged(tempPath)))
        throw new StagingFollowStopped('removed', 'the staging file was removed');
      if (Date.now() > deadline) throw new GaveUp(`the upload was not accepted within ${ACCEPT_WAIT_MS} ms`);
      await sleep(ACCEPT_POLL_MS, undefined, { signal });
    }
  }
}

function wrappedOf(row: FileEntity): WrappedDataKey {
  if (!row.keyRef) throw new GaveUp('the upload was not staged encrypted');
  return { keyRef: row.keyRef, wrappedKey: row.wrappedKey ?? Buffer.alloc(0) };
}

function wrappedOfHint(hint: FollowHint): WrappedDataKey {
  return { keyRef: hint.keyRef, wrappedKey: Buffer.from(hint.wrappedKey, 'base64') };
}

function sameKey(a: WrappedDataKey, b: WrappedDataKey): boolean {
  return a.keyRef === b.keyRef && a.wrappedKey.equals(b.wrappedKey);
}

function stillStaged(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
