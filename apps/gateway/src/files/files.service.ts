import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConflictException, Inject, Injectable, Logger, NotFoundException } from '@nestjs/common';
import {
  AuditRepository,
  type ConfiguredKeyProvider,
  type FileEntity,
  FileRepository,
  isIntegrityFailure,
  KEY_PROVIDER,
  OBJECT_STORE,
  type ObjectStore,
  type OpenedObject,
  openStoredFile,
  TESS_CONFIG,
  type TessConfig,
} from '#common';
import { CRYPTO_QUEUE, type CryptoQueue } from '../infra/queue.module.js';

/** The public shape of a file (docs/architecture.md, Public contract). */
export function fileView(file: FileEntity) {
  return {
    id: file.id,
    filename: file.filename,
    size: file.size,
    contentType: file.contentType,
    status: file.status,
    sha1: file.sha1,
    sha256: file.sha256,
    createdAt: file.createdAt,
    ...(file.storedAt ? { storedAt: file.storedAt } : {}),
    ...(file.error ? { error: file.error } : {}),
  };
}
export type FileView = ReturnType<typeof fileView>;

/**
 * Reading, verifying and deleting a user's files. Integrity failures (a bad tag, a truncated or
 * swapped object, a key that does not authenticate, a SHA-256 mismatch) mark the file `corrupt` and
 * write an audit event; they never release unauthenticated plaintext.
 */
@Injectable()
export class FilesService {
  private readonly logger = new Logger(FilesService.name);

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
    private readonly audit: AuditRepository,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
    @Inject(CRYPTO_QUEUE) private readonly queue: CryptoQueue,
  ) {}

  /** The user's file, or 404 whether it does not exist or belongs to someone else. */
  async get(ownerId: string, id: string): Promise<FileEntity> {
    const file = await this.files.findOwned(ownerId, id);
    if (!file) throw new NotFoundException('No such file.');
    return file;
  }

  private assertStored(file: FileEntity): void {
    if (file.status !== 'stored') {
      throw new ConflictException(
        file.status === 'corrupt'
          ? 'This file failed an integrity check and cannot be downloaded.'
          : `This file is ${file.status}; it can be read once it is stored.`,
      );
    }
  }

  /**
   * Opens verified plaintext of the whole file or a range (start..end inclusive). `allowCorrupt` lets
   * verify re-read a file already marked corrupt (its plaintext still only flows to a hash, never out).
   */
  async open(
    file: FileEntity,
    range?: { start: number; end: number },
    ip?: string,
    options: { allowCorrupt?: boolean } = {},
  ): Promise<OpenedObject> {
    if (!(options.allowCorrupt && file.status === 'corrupt')) this.assertStored(file);
    try {
      return await openStoredFile(this.store, this.keys, file, range);
    } catch (error) {
      if (isIntegrityFailure(error)) await this.markCorrupt(file, error as Error, ip);
      throw error;
    }
  }

  async markCorrupt(file: FileEntity, error: Error, ip?: string): Promise<void> {
    this.logger.error(`file ${file.id}: integrity failure: ${error.message}`);
    if (await this.files.markCorrupt(file.id, error.message)) {
      await this.audit.record({
        action: 'file.corrupt',
        userId: file.ownerId,
        fileId: file.id,
        ip,
        details: { error: error.message.slice(0, 500) },
      });
    }
  }

  /** Re-reads the whole object: every tag and the SHA-256. */
  async verify(
    file: FileEntity,
    ip?: string,
  ): Promise<{ ok: boolean; checkedBytes: number; error?: string }> {
    let checkedBytes = 0;
    try {
      const opened = await this.open(file, undefined, ip, { allowCorrupt: true });
      const sink = new Writable({
        highWaterMark: 1024 * 1024,
        write(chunk: Buffer, _encoding, callback) {
          checkedBytes += chunk.length;
          callback();
        },
      });
      await pipeline(opened.stream, sink);
    } catch (error) {
      if (!isIntegrityFailure(error)) throw error;
      if (file.status === 'stored') await this.markCorrupt(file, error as Error, ip);
      await this.audit.record({
        action: 'file.verified',
        userId: file.ownerId,
        fileId: file.id,
        ip,
        details: { ok: false },
      });
      return { ok: false, checkedBytes, error: (error as Error).message };
    }
    await this.audit.record({
      action: 'file.verified',
      userId: file.ownerId,
      fileId: file.id,
      ip,
      details: { ok: true },
    });
    return { ok: true, checkedBytes };
  }

  /**
   * Deletes the row first (a job still running then fails to commit and cleans up after itself), then
   * the queued job, the object, the key (per-file secret) and any temp file. A crash in between can
   * leave an unreferenced ciphertext object, never a row pointing at nothing.
   */
  async delete(file: FileEntity, ip?: string): Promise<void> {
    await this.files.delete(file.id);
    await this.queue.remove(file.id).catch(() => 0);
    if (file.objectKey) await this.store.delete(file.objectKey);
    if (file.keyRef) {
      await this.keys.destroyDataKey(file.id, {
        keyRef: file.keyRef,
        wrappedKey: file.wrappedKey ?? Buffer.alloc(0),
      });
    }
    await unlink(join(this.config.tempDir, file.tempPath ?? file.id)).catch(() => undefined);
    await this.audit.record({
      action: 'file.deleted',
      userId: file.ownerId,
      fileId: file.id,
      ip,
      details: { filename: file.filename, size: file.size },
    });
  }
}
