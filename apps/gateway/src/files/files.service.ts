import { Inject, Injectable, UnsupportedMediaTypeException } from '@nestjs/common';
import {
  AuditRepository,
  type ConfiguredKeyProvider,
  type FileEntity,
  FileRepository,
  FileVersionRepository,
  KEY_PROVIDER,
  OBJECT_STORE,
  type ObjectStore,
  removeFileData,
  TESS_CONFIG,
  type TessConfig,
  TypePolicy,
} from '#common';
import { JobQueue } from '../infra/job-queue.js';
import { SharesService } from '../shares/shares.service.js';

/** Another of the owner's stored files with the same content. */
export type FileTwin = Pick<FileEntity, 'id' | 'filename' | 'createdAt'>;

/** The public shape of a file (docs/architecture.md, Public contract). */
export function fileView(file: FileEntity, twin?: FileTwin, receivedBytes?: number | null) {
  return {
    id: file.id,
    filename: file.filename,
    size: file.size,
    contentType: file.contentType,
    detectedType: file.detectedType,
    status: file.status,
    sha1: file.sha1,
    sha256: file.sha256,
    createdAt: file.createdAt,
    ...(file.storedAt ? { storedAt: file.storedAt } : {}),
    ...(file.error ? { error: file.error } : {}),
    ...(file.clientSha256 ? { clientSha256: file.clientSha256 } : {}),
    ...(file.clientVerified !== null && file.clientVerified !== undefined
      ? { clientVerified: file.clientVerified }
      : {}),
    ...(twin ? { duplicateOf: { id: twin.id, filename: twin.filename, createdAt: twin.createdAt } } : {}),
    ...(file.typeWarning ? { typeWarning: file.typeWarning } : {}),
    ...(file.scannedWith ? { scannedWith: file.scannedWith } : {}),
    version: file.version,
    versionCount: file.versionCount,
    ...(file.folderId ? { folderId: file.folderId } : {}),
    // An unfinished resumable upload: its tus offset, so a user sees how far it got (and may delete it).
    ...(receivedBytes !== undefined && receivedBytes !== null ? { receivedBytes } : {}),
  };
}
export type FileView = ReturnType<typeof fileView>;

/** Deleting files the AccessPolicy let through (reads and verify are the FileReader's). */
@Injectable()
export class FilesService {
  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
    private readonly audit: AuditRepository,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
    private readonly jobs: JobQueue,
    private readonly shares: SharesService,
    private readonly versions: FileVersionRepository,
  ) {
    this.typePolicy = new TypePolicy(config.content);
  }

  private readonly typePolicy: TypePolicy;

  /**
   * Renames and/or moves a file: metadata only, the object, its key and its hashes stay as they are, and
   * downloads use the new name. A name the type policy blocks is refused (415) as at upload; a name taken
   * in the target folder is a NameTakenError (409). Audited as `file.renamed` and/or `file.moved`.
   */
  async update(
    file: FileEntity,
    changes: { filename?: string; folderId?: string | null },
    ip?: string,
  ): Promise<FileEntity> {
    if (changes.filename !== undefined) {
      const violation = this.typePolicy.checkDeclared(changes.filename, file.contentType);
      if (violation) throw new UnsupportedMediaTypeException(violation.message);
    }
    await this.files.rename(file.id, changes);
    const renamed = changes.filename !== undefined && changes.filename !== file.filename;
    const moved = changes.folderId !== undefined && changes.folderId !== file.folderId;
    if (renamed) {
      await this.audit.record({
        action: 'file.renamed',
        userId: file.ownerId,
        fileId: file.id,
        ip,
        details: { from: file.filename, to: changes.filename! },
      });
    }
    if (moved) {
      await this.audit.record({
        action: 'file.moved',
        userId: file.ownerId,
        fileId: file.id,
        ip,
        details: { filename: changes.filename ?? file.filename, from: file.folderId, to: changes.folderId! },
      });
    }
    return (await this.files.findById(file.id)) ?? file;
  }

  /**
   * Deletes the row first (a job still running then fails to commit and cleans up after itself), then
   * the queued job, the object, the key (per-file secret) and any temp file. A crash in between can
   * leave an unreferenced ciphertext object, never a row pointing at nothing. Its share links are
   * revoked first (their rows stay, so the links answer 410). Every version goes with it: each distinct
   * object and key, and the uploads of new versions still in the pipeline (rows, jobs, staged data).
   */
  async delete(file: FileEntity, ip?: string): Promise<void> {
    await this.shares.revokeForFile(file, ip);
    const versions = await this.versions.objectsOf(file.id);
    const uploads = await this.files.uploadsOfVersions(file.id);
    await this.files.delete(file.id);
    await this.jobs.remove('encrypt-file', file.id).catch(() => 0);
    for (const upload of uploads) await this.jobs.remove('encrypt-file', upload.id).catch(() => 0);
    await removeFileData({ store: this.store, keys: this.keys, tempDir: this.config.tempDir }, file, {
      versions,
      uploads,
    });
    await this.audit.record({
      action: 'file.deleted',
      userId: file.ownerId,
      fileId: file.id,
      ip,
      details: { filename: file.filename, size: file.size },
    });
  }
}
