import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConflictException, Inject, Injectable, Logger } from '@nestjs/common';
import {
  AuditRepository,
  type ByteRange,
  type ConfiguredKeyProvider,
  type FileEntity,
  FileRepository,
  isIntegrityFailure,
  KEY_PROVIDER,
  OBJECT_STORE,
  type ObjectStore,
  type OpenedObject,
  objectIdOf,
  openStoredFile,
} from '#common';

/**
 * The gateway's read side: verified plaintext of a stored file (libs/common read/) with the
 * consequences of a failed integrity check. Such a failure (a bad tag, a truncated or swapped object,
 * a key that does not authenticate, a SHA-256 mismatch) marks the file `corrupt` and writes an audit
 * event; it never releases unauthenticated plaintext.
 */
@Injectable()
export class FileReader {
  private readonly logger = new Logger(FileReader.name);

  constructor(
    private readonly files: FileRepository,
    private readonly audit: AuditRepository,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
  ) {}

  /**
   * Opens verified plaintext of the whole file or a range; 409 unless the file is stored.
   * `allowCorrupt` lets verify re-read a file already marked corrupt (its plaintext still only flows
   * to a hash, never out). Integrity failures found while opening are marked here; those found later
   * while reading the stream are the caller's to pass to {@link markCorrupt}.
   */
  async open(
    file: FileEntity,
    range?: ByteRange,
    ip?: string,
    options: { allowCorrupt?: boolean } = {},
  ): Promise<OpenedObject> {
    if (!(options.allowCorrupt && file.status === 'corrupt')) assertStored(file);
    try {
      return await openStoredFile(this.store, this.keys, file, range);
    } catch (error) {
      if (isIntegrityFailure(error)) await this.markCorrupt(file, error as Error, ip);
      throw error;
    }
  }

  /**
   * Re-reads the whole object, every tag and the SHA-256, into a counter (no plaintext leaves), also
   * for a file already marked corrupt. A failure marks a stored file corrupt; both outcomes are audited.
   */
  async verify(
    file: FileEntity,
    ip?: string,
  ): Promise<{ ok: boolean; checkedBytes: number; error?: string }> {
    let checkedBytes = 0;
    let failure: Error | undefined;
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
      failure = error as Error;
      if (file.status === 'stored') await this.markCorrupt(file, failure, ip);
    }
    await this.audit.record({
      action: 'file.verified',
      userId: file.ownerId,
      fileId: file.id,
      ip,
      details: { filename: file.filename, ok: !failure },
    });
    return failure ? { ok: false, checkedBytes, error: failure.message } : { ok: true, checkedBytes };
  }

  /** Marks the file corrupt and audits it once, on the transition from stored. */
  async markCorrupt(file: FileEntity, error: Error, ip?: string): Promise<void> {
    this.logger.error(`file ${file.id}: integrity failure: ${error.message}`);
    // The object read: the file's current one, or an older version's (then only that version is marked).
    if (await this.files.markCorrupt(file.id, error.message, objectIdOf(file))) {
      await this.audit.record({
        action: 'file.corrupt',
        userId: file.ownerId,
        fileId: file.id,
        ip,
        details: { filename: file.filename, version: file.version, error: error.message.slice(0, 500) },
      });
    }
  }
}

function assertStored(file: FileEntity): void {
  if (file.status !== 'stored') {
    throw new ConflictException(
      file.status === 'corrupt'
        ? 'This file failed an integrity check and cannot be downloaded.'
        : `This file is ${file.status}; it can be read once it is stored.`,
    );
  }
}
