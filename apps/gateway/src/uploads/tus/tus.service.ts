import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdir, stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  BadRequestException,
  ConflictException,
  GoneException,
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  PayloadTooLargeException,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { Redis } from 'ioredis';
import {
  AuditRepository,
  type ConfiguredKeyProvider,
  type FileEntity,
  FileRepository,
  KEY_PROVIDER,
  recoverLength,
  StagingWriter,
  TESS_CONFIG,
  type TessConfig,
  TessMetrics,
} from '#common';
import { ClientAbortedError } from '../../http/client-aborted.error.js';
import { formatBytes } from '../../http/views.js';
import { REDIS } from '../../infra/redis.module.js';
import { normalizeContentType, storedFilename } from '../filename.js';
import {
  DataKeyUnavailable,
  SHA256_HEX,
  UploadsService,
  uploadFolderId,
  writeError,
} from '../uploads.service.js';
import { formatMetadata, type TusChecksumAlgorithm } from './tus-headers.js';
import { UploadLayouts } from './upload-layout.js';
import { type HeldLock, UploadLocks } from './upload-lock.js';

/**
 * A PATCH starts an fdatasync in the background after each this many staged bytes (StagingWriter
 * `syncAhead`): one record, so the fsync that ends the PATCH waits for about one record's write-back.
 */
const SYNC_AHEAD = 1024 * 1024;

/** A PATCH that sends nothing for this long is cut off, so a dead connection does not hold the lock. */
const BODY_IDLE_MS = 60_000;

/** An id of a file (Upload-Metadata `fileId`); anything else names no file. */
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** What HEAD (and every answer about an upload) reports. */

export interface TusUploadState {
  id: string;
  offset: number;
  length: number;
  metadata: string;
  /** Null once the upload is complete (a finished upload does not expire). */
  expiresAt: Date | null;
}

export interface TusCreate {
  length: number;
  metadata: Map<string, string>;
  ip?: string;
}

export interface TusPatch {
  offset: number;
  body: Readable;
  checksum: { algorithm: TusChecksumAlgorithm; digest: Buffer } | null;
  /** `Tess-Upload-Sha256`: the SHA-256 of the whole file, declared on a PATCH (lowercase hex). */
  sha256?: string | null;
  ip?: string;
}

/** 460 Checksum Mismatch (tus checksum extension): the chunk was discarded, the offset did not move. */
class ChecksumMismatch extends HttpException {
  constructor() {
    super(
      'The chunk does not match its Upload-Checksum; it was discarded and the offset did not move. Send it again.',
      460,
    );
  }
}

/**
 * Resumable uploads (tus 1.0.0: core, creation, creation-with-upload, termination, expiration, checksum)
 * into the same encrypted staging as the multipart endpoint: an upload is a file row in status
 * `receiving` from its creation (its size reserved against the quota) and a staging file that each PATCH
 * appends authenticated records to (docs/format.md, "Staging format"). The offset is the staged length,
 * recovered from the file itself; when it reaches Upload-Length the file is sealed, the row becomes
 * `queued` and its job is enqueued exactly as for a multipart upload.
 *
 * Written here rather than on @tus/server 2.x: that server lacks the checksum extension and a shared
 * locker, answers through WHATWG Request/Response objects (srvx) that would sit between Express, our
 * guards and the staging writer, and its data-store interface hides the request headers the checksum
 * needs. The protocol itself is small; conformance is tested with tus-js-client (test/api/tus.e2e.spec.ts).
 */
@Injectable()
export class TusService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(TusService.name);
  private readonly locks: UploadLocks;
  private readonly layouts: UploadLayouts;
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
    private readonly audit: AuditRepository,
    private readonly uploads: UploadsService,
    private readonly metrics: TessMetrics,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
    @Inject(REDIS) redis: Redis,
  ) {
    this.locks = new UploadLocks(redis, `${config.redis.prefix}:tus-lock`);
    this.layouts = new UploadLayouts(redis, `${config.redis.prefix}:tus-layout`);
  }

  onApplicationBootstrap(): void {
    const every = Math.min(Math.max(this.config.tus.uploadExpiryMs / 4, 1_000), 10 * 60_000);
    this.timer = setInterval(() => {
      this.sweepExpired().then(
        (removed) => {
          if (removed.length) this.logger.log(`Removed ${removed.length} expired unfinished upload(s)`);
        },
        (error: Error) => this.logger.warn(`Sweeping expired uploads failed: ${error.message}`),
      );
    }, every);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** POST: a new upload of `length` bytes; limits and quotas are checked before anything is kept. */
  async create(ownerId: string, input: TusCreate): Promise<TusUploadState> {
    const { maxFileSize } = this.config.uploads;
    if (input.length > maxFileSize) {
      throw new PayloadTooLargeException(
        `Upload-Length ${input.length} is larger than the ${formatBytes(maxFileSize)} limit (${maxFileSize} bytes); nothing was created.`,
      );
    }
    const clientSha256 = input.metadata.get('sha256')?.toLowerCase() ?? null;
    if (clientSha256 !== null && !SHA256_HEX.test(clientSha256)) {
      throw new BadRequestException('Upload-Metadata "sha256" must be 64 hexadecimal characters.');
    }
    const versionOf = await this.versionTarget(ownerId, input.metadata.get('fileId'));
    const declaredName = storedFilename(input.metadata.get('filename') ?? 'upload');
    const contentType = normalizeContentType(input.metadata.get('filetype'));
    this.uploads.refuseDeclared(declaredName, contentType);
    // A new version keeps its file's name; it adds bytes, not a file.
    const filename = versionOf?.filename ?? declaredName;
    const folderId = uploadFolderId(input.metadata.get('folderId'), 'Upload-Metadata "folderId"');
    await this.uploads.targetFolder(ownerId, folderId);
    await this.uploads.enforceQuota(ownerId, [{ size: input.length }], versionOf ? 0 : 1);

    const id = randomUUID();
    const path = this.pathOf(id);
    await mkdir(this.config.tempDir, { recursive: true, mode: 0o700 });
    let wrapped: { keyRef: string; wrappedKey: Buffer } | undefined;
    try {
      const created = await this.keys.createDataKey(id).catch((error: Error) => {
        this.logger.error(`Could not create a data key for an upload: ${error.message}`);
        throw new DataKeyUnavailable();
      });
      const { dataKey, ...rest } = created;
      wrapped = rest;
      // The staging file starts as its header alone; PATCHes append records, the last one seals it.
      const writer = StagingWriter.create({ path, fileId: id, dataKey, sealOnEnd: false });
      writer.end();
      await finished(writer).catch((error: unknown) => {
        throw writeError(error);
      });
      dataKey.fill(0);
      const row = await this.files.createReceiving({
        id,
        ownerId,
        filename,
        contentType,
        size: input.length,
        tempPath: id,
        keyRef: wrapped.keyRef,
        wrappedKey: wrapped.wrappedKey.length ? wrapped.wrappedKey : null,
        uploadExpiresAt: new Date(Date.now() + this.config.tus.uploadExpiryMs),
        clientSha256,
        versionOf: versionOf?.id ?? null,
        folderId,
      });
      await this.audit.record({
        action: 'upload.started',
        userId: ownerId,
        fileId: id,
        ip: input.ip,
        details: { filename: row.filename, size: row.size, resumable: true },
      });
      // An empty file is complete at creation: no PATCH will come (clients send none for 0 bytes).
      if (row.size === 0) {
        await this.seal(row);
        return this.stateOf(await this.finish(row, input.ip), 0);
      }
      return this.stateOf(row, 0);
    } catch (error) {
      await this.files.delete(id).catch(() => undefined);
      await this.removeStaging(id, wrapped);
      throw error;
    }
  }

  /**
   * Upload-Metadata `fileId`: the upload is a new version of that file of the owner (docs/architecture.md,
   * "File versions"); 404 for anything else, 409 while the file's first version is not stored.
   */
  private async versionTarget(ownerId: string, fileId: string | undefined): Promise<FileEntity | null> {
    if (fileId === undefined) return null;
    const file = UUID_V4.test(fileId) ? await this.files.findOwned(ownerId, fileId) : null;
    if (!file || file.versionOf)
      throw new NotFoundException('Upload-Metadata "fileId" names no file of yours.');
    if (file.status !== 'stored' && file.status !== 'corrupt') {
      throw new ConflictException(
        `That file is ${file.status}; it gets versions once its first one is stored.`,
      );
    }
    return file;
  }

  /** HEAD: where the upload stands. 404 for a missing or another user's upload, 410 once expired. */
  async head(ownerId: string, id: string): Promise<TusUploadState> {
    const row = await this.live(ownerId, id);
    if (row.status !== 'receiving') return this.stateOf(row, row.size);
    return this.stateOf(row, await this.stagedLength(row));
  }

  /**
   * PATCH: appends the body at `offset` (409 unless it is the current offset) under the upload's lock (423
   * while another request writes to it). The chunk is streamed through the staging writer, never held
   * whole. With Upload-Checksum, a mismatch (or a chunk cut short) is truncated away again: 460, the offset
   * does not move. Without one, what arrived before a disconnect is kept, and HEAD says how much.
   */
  async patch(ownerId: string, id: string, input: TusPatch): Promise<TusUploadState> {
    let row = await this.live(ownerId, id);
    if (row.status !== 'receiving') {
      // A repeated final PATCH (its answer was lost): the upload is complete; make sure its job exists.
      if (input.offset !== row.size) throw this.offsetConflict(input.offset, row.size);
      // The same declaration again is that repeat; any other comes after the worker may have read the row.
      if (input.sha256 && input.sha256 !== row.clientSha256) throw lateSha256();
      await drainEmpty(input.body);
      if (row.status === 'queued') await this.uploads.enqueue(ownerId, [{ id }]);
      return this.stateOf(row, row.size);
    }
    const lock = await this.lockOrBusy(id);
    // Data flows again: a follower that gave up during a pause comes back (a no-op while one runs).
    if (this.uploads.pipelined(row.size)) this.uploads.follow(id, ownerId);
    let offset: number;
    try {
      const declare = input.sha256 ? this.declareSha256(row, input.sha256) : null;
      offset = await this.append(row, input, lock, declare);
      if (input.sha256) row = { ...row, clientSha256: input.sha256 } as FileEntity;
      if (offset === row.size) {
        await this.seal(row);
        row = await this.finish(row, input.ip);
      }
    } finally {
      await lock.release();
    }
    return this.stateOf(row, offset);
  }

  /** DELETE (termination): the unfinished upload, its staging and its data key are gone; 204. */
  async terminate(ownerId: string, id: string, ip?: string): Promise<void> {
    const row = await this.live(ownerId, id);
    if (row.status !== 'receiving') {
      throw new ConflictException(
        `This upload is complete; delete the file with DELETE /api/v1/files/${id} instead.`,
      );
    }
    const lock = await this.lockOrBusy(id);
    try {
      await this.discard(row, 'upload.cancelled', ip);
    } finally {
      await lock.release();
    }
  }

  /** Removes every expired unfinished upload whose lock is free; returns their ids (the temp sweeper). */
  async sweepExpired(now = new Date()): Promise<string[]> {
    const removed: string[] = [];
    for (const row of await this.files.expiredReceiving(now)) {
      const lock = await this.locks.acquire(row.id);
      if (!lock) continue;
      try {
        await this.discard(row, 'upload.expired');
        removed.push(row.id);
      } finally {
        await lock.release();
      }
    }
    return removed;
  }

  /**
   * Records a SHA-256 declared on a PATCH (the dashboard's, known only once it has read the whole file),
   * under the upload's lock and before the chunk is appended: the PATCH that completes the upload cannot
   * queue the row without it. A repeat of the recorded value is a no-op (a retried PATCH); a different one
   * is refused, as is any on a complete upload (above).
   */
  private declareSha256(row: FileEntity, sha256: string): () => Promise<void> {
    return async () => {
      if (row.clientSha256 === sha256) return;
      if (row.clientSha256) {
        throw new ConflictException(
          'This upload already has a different declared SHA-256; nothing was changed. Cancel it and upload the file again.',
        );
      }
      if (!(await this.files.declareClientSha256(row.id, sha256))) {
        throw new ConflictException(
          'This upload can no longer take a declared SHA-256; nothing was changed.',
        );
      }
    };
  }

  /** The upload's lock, or 423 while another request holds it. */
  private async lockOrBusy(id: string): Promise<HeldLock> {
    const lock = await this.locks.acquire(id);
    if (!lock) {
      throw new HttpException(
        'Another request is writing to this upload right now; retry in a moment.',
        HttpStatus.LOCKED,
      );
    }
    return lock;
  }

  /** The owner's upload, expired ones removed (410) on the way; 404 for anything else. */
  private async live(ownerId: string, id: string): Promise<FileEntity> {
    const row = await this.files.findOwned(ownerId, id);
    if (!row) throw new NotFoundException('No such upload.');
    if (row.status === 'receiving' && row.uploadExpiresAt && row.uploadExpiresAt.getTime() <= Date.now()) {
      const lock = await this.locks.acquire(id);
      if (lock) {
        try {
          await this.discard(row, 'upload.expired');
        } finally {
          await lock.release();
        }
      }
      throw new GoneException(
        'This upload expired before it was finished and has been removed; start it again.',
      );
    }
    return row;
  }

  private async append(
    row: FileEntity,
    input: TusPatch,
    lock: HeldLock,
    beforeBody: (() => Promise<void>) | null,
  ): Promise<number> {
    const path = this.pathOf(row.id);
    // The resume point (Redis) and the data key (the key provider) are asked for at once.
    const point = this.layouts.get(row.id);
    point.catch(() => undefined);
    const dataKey = await this.dataKeyOf(row);
    const resumeFrom = await point;
    // A chunk is on disk before its 204 (an OS crash never takes back an acknowledged offset), at little
    // cost: the records are written back while the chunk arrives, so the fsync at its end has about one
    // record left; and the seal's fsync, before the row is queued, no longer writes back the whole file.
    const writer = StagingWriter.resume({
      path,
      fileId: row.id,
      dataKey,
      sealOnEnd: false,
      syncAhead: SYNC_AHEAD,
      resumeFrom,
      // The request body's chunks go nowhere else (a checksum, when asked for, sees each one first).
      releaseInput: true,
    });
    // An open failure surfaces through ready(); keep the stream from reporting it a second time.
    writer.on('error', () => undefined);
    let current: number;
    try {
      current = await writer.ready();
    } catch (error) {
      writer.destroy();
      throw this.stagingError(row, error);
    } finally {
      dataKey.fill(0);
    }
    const before = (await stat(path)).size;
    if (current !== input.offset) {
      writer.destroy();
      await finished(writer).catch(() => undefined);
      throw this.offsetConflict(input.offset, current);
    }
    if (beforeBody) {
      try {
        await beforeBody();
      } catch (error) {
        writer.destroy();
        await finished(writer).catch(() => undefined);
        throw error;
      }
    }

    const room = row.size - current;
    const hash = input.checksum ? createHash(input.checksum.algorithm) : null;
    let received = 0;
    let failure: Error | null = null;
    const idle = new IdleTimer(BODY_IDLE_MS, () => input.body.destroy(new Error('no bytes for a minute')));
    const onLost = () => input.body.destroy(new Error('the upload lock was lost'));
    lock.lost.addEventListener('abort', onLost, { once: true });
    try {
      for await (const chunk of input.body as AsyncIterable<Buffer>) {
        idle.touch();
        received += chunk.length;
        if (received > room) {
          failure = new PayloadTooLargeException(
            `This chunk goes past Upload-Length (${row.size} bytes); nothing of it was kept.`,
          );
          break;
        }
        hash?.update(chunk);
        if (!writer.write(chunk)) await onceDrainOrError(writer);
      }
    } catch (error) {
      // The client went away (or stalled): keep what arrived unless a checksum has to cover the chunk.
      failure = error as Error;
    } finally {
      idle.stop();
      lock.lost.removeEventListener('abort', onLost);
    }

    const keepPartial = failure !== null && !(failure instanceof HttpException) && !hash;
    if (failure && !keepPartial) {
      writer.destroy();
      await finished(writer).catch(() => undefined);
      await truncate(path, before);
      throw failure instanceof HttpException ? failure : new ChecksumMismatch();
    }
    writer.end();
    try {
      await finished(writer);
    } catch (error) {
      await truncate(path, before).catch(() => undefined);
      throw writeError(error);
    }
    if (hash && input.checksum && !sameDigest(hash.digest(), input.checksum.digest)) {
      await truncate(path, before);
      throw new ChecksumMismatch();
    }
    const offset = writer.plaintextBytes;
    await this.layouts.set(row.id, writer.resumePoint, row.uploadExpiresAt);
    if (failure) {
      this.logger.log(`Upload ${row.id}: connection ended at offset ${offset} of ${row.size}; it can resume`);
      throw new ClientAbortedError();
    }
    return offset;
  }

  /** Appends the seal (the staged total) so the worker accepts the file. */
  private async seal(row: FileEntity): Promise<void> {
    const dataKey = await this.dataKeyOf(row);
    const writer = StagingWriter.resume({
      path: this.pathOf(row.id),
      fileId: row.id,
      dataKey,
      sealOnEnd: true,
      resumeFrom: await this.layouts.get(row.id),
    });
    writer.end();
    try {
      await finished(writer);
    } catch (error) {
      throw this.stagingError(row, error);
    } finally {
      dataKey.fill(0);
    }
    await this.layouts.delete(row.id);
  }

  /** receiving -> queued, then the job: the same path and the same audit as a multipart upload. */
  private async finish(row: FileEntity, ip?: string): Promise<FileEntity> {
    if (!(await this.files.markReceived(row.id))) {
      throw new NotFoundException('No such upload.');
    }
    // If Redis is down the client gets 503 and repeats the final PATCH, which enqueues then.
    await this.uploads.enqueue(row.ownerId, [{ id: row.id }]);
    // A new version is no file of its own: its file's row changes once it is stored.
    if (!row.versionOf) this.uploads.announce(row.ownerId, [row]);
    this.metrics.uploadFileBytes.observe(row.size);
    await this.audit.record({
      action: 'upload.accepted',
      userId: row.ownerId,
      fileId: row.versionOf ?? row.id,
      ip,
      details: {
        filename: row.filename,
        size: row.size,
        resumable: true,
        ...(row.versionOf ? { newVersion: true, upload: row.id } : {}),
      },
    });
    return { ...row, status: 'queued', uploadExpiresAt: null } as FileEntity;
  }

  private async discard(
    row: FileEntity,
    action: 'upload.cancelled' | 'upload.expired',
    ip?: string,
  ): Promise<void> {
    await this.files.delete(row.id);
    await this.layouts.delete(row.id);
    await this.removeStaging(
      row.id,
      row.keyRef ? { keyRef: row.keyRef, wrappedKey: row.wrappedKey ?? Buffer.alloc(0) } : undefined,
    );
    await this.audit.record({
      action,
      userId: row.ownerId,
      fileId: row.id,
      ip,
      details: { filename: row.filename, size: row.size },
    });
  }

  private async removeStaging(
    id: string,
    wrapped: { keyRef: string; wrappedKey: Buffer } | undefined,
  ): Promise<void> {
    await unlink(this.pathOf(id)).catch(() => undefined);
    if (wrapped) {
      await this.keys.destroyDataKey(id, wrapped).catch((error: Error) => {
        this.logger.warn(`Could not remove the data key of upload ${id}: ${error.message}`);
      });
    }
  }

  /**
   * How much of an unfinished resumable upload has arrived (its tus offset), for the files API: null when
   * the row is not `receiving` or its staging cannot be read (HEAD on the upload then says why).
   */
  async receivedBytes(row: FileEntity): Promise<number | null> {
    if (row.status !== 'receiving') return null;
    return this.stagedLength(row).catch(() => null);
  }

  private async stagedLength(row: FileEntity): Promise<number> {
    try {
      return await recoverLength(this.pathOf(row.id), await this.layouts.get(row.id));
    } catch (error) {
      throw this.stagingError(row, error);
    }
  }

  private async dataKeyOf(row: FileEntity): Promise<Buffer> {
    try {
      return await this.keys.unwrapDataKey(row.id, {
        keyRef: row.keyRef!,
        wrappedKey: row.wrappedKey ?? Buffer.alloc(0),
      });
    } catch (error) {
      this.logger.error(`Could not unwrap the data key of upload ${row.id}: ${(error as Error).message}`);
      throw new ServiceUnavailableException(
        'The key service is unavailable right now; nothing was changed. Try again in a moment.',
      );
    }
  }

  /** The staging file is missing or does not authenticate: nothing can be appended; the upload is lost. */
  private stagingError(row: FileEntity, error: unknown): HttpException {
    if ((error as { code?: string }).code === 'ENOENT') {
      return new GoneException('This upload is no longer on the server; start it again.');
    }
    if (error instanceof HttpException) return error;
    this.logger.warn(`Upload ${row.id}: staging unusable: ${(error as Error).message}`);
    return new ConflictException(
      'The stored part of this upload failed its integrity check and cannot be continued; cancel it and start again.',
    );
  }

  private offsetConflict(sent: number, current: number): ConflictException {
    return new ConflictException(
      `Upload-Offset ${sent} is not the upload's current offset ${current}; ask with HEAD and continue from there.`,
    );
  }

  private stateOf(row: FileEntity, offset: number): TusUploadState {
    return {
      id: row.id,
      offset,
      length: row.size,
      metadata: formatMetadata({
        filename: row.filename,
        filetype: row.contentType,
        sha256: row.clientSha256,
        fileId: row.versionOf,
      }),
      expiresAt: row.status === 'receiving' ? row.uploadExpiresAt : null,
    };
  }

  private pathOf(id: string): string {
    return join(this.config.tempDir, id);
  }
}

function lateSha256(): ConflictException {
  return new ConflictException(
    'This upload is complete: a SHA-256 can only be declared before its last byte (Upload-Metadata sha256, or Tess-Upload-Sha256 on a PATCH).',
  );
}

function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A PATCH to a complete upload may only be empty. */
async function drainEmpty(body: Readable): Promise<void> {
  let extra = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) extra += chunk.length;
  if (extra) throw new ConflictException('This upload is complete; it takes no more bytes.');
}

function onceDrainOrError(writer: StagingWriter): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      writer.off('drain', onDrain);
      writer.off('error', done);
      writer.off('close', onClose);
      if (error) reject(error);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('the staging writer closed'));
    writer.once('drain', onDrain);
    writer.once('error', done);
    writer.once('close', onClose);
  });
}

/** Calls `onIdle` once `ms` pass without a touch. */
class IdleTimer {
  private readonly timer: NodeJS.Timeout;
  constructor(ms: number, onIdle: () => void) {
    this.timer = setTimeout(onIdle, ms);
  }
  touch(): void {
    this.timer.refresh();
  }
  stop(): void {
    clearTimeout(this.timer);
  }
}
