import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Inject, Injectable } from '@nestjs/common';
import {
  AuditRepository,
  type ConfiguredKeyProvider,
  type FileEntity,
  FileRepository,
  isIntegrityFailure,
  KEY_PROVIDER,
  OBJECT_STORE,
  type ObjectStore,
  TESS_CONFIG,
  type TessConfig,
} from '#common';
import { FileReader } from '../downloads/file-reader.service.js';
import { CRYPTO_QUEUE, type CryptoQueue } from '../infra/queue.module.js';

/** The public shape of a file in the API (FileDto). */
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
 * Verifying and deleting files the AccessPolicy let through. Verify reads through the same
 * FileReader as downloads, so an integrity failure marks the file `corrupt` and is audited there.
 */
@Injectable()
export class FilesService {
  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
    private readonly audit: AuditRepository,
    private readonly reader: FileReader,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
    @Inject(CRYPTO_QUEUE) private readonly queue: CryptoQueue,
  ) {}

  /** Re-reads the whole object: every tag and the SHA-256. */
  async verify(
    file: FileEntity,
    ip?: string,
  ): Promise<{ ok: boolean; checkedBytes: number; error?: string }> {
    let checkedBytes = 0;
    try {
      const opened = await this.reader.open(file, undefined, ip, { allowCorrupt: true });
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
      if (file.status === 'stored') await this.reader.markCorrupt(file, error as Error, ip);
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
