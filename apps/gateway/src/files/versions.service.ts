import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import {
  AuditRepository,
  type FileEntity,
  FileRepository,
  type FileVersion,
  FileVersionRepository,
  type VersionRefusal,
  VersionRemover,
} from '#common';

/** The public shape of a version. */
export function versionView(v: FileVersion, current: number) {
  return {
    version: v.version,
    current: v.version === current,
    status: v.status,
    size: v.size,
    contentType: v.contentType,
    detectedType: v.detectedType,
    sha1: v.sha1,
    sha256: v.sha256,
    uploadedBy: v.uploadedBy,
    createdAt: v.createdAt,
    storedAt: v.storedAt,
    ...(v.restoredFrom !== null ? { restoredFrom: v.restoredFrom } : {}),
  };
}

function refused(refusal: VersionRefusal): never {
  switch (refusal) {
    case 'no-file':
      throw new NotFoundException('No such file.');
    case 'no-version':
      throw new NotFoundException('No such version.');
    case 'current':
      throw new ConflictException(
        'That is the current version; restore another one first, or delete the whole file.',
      );
    case 'not-stored':
      throw new ConflictException('That version (or the file) is not stored; it cannot be used.');
  }
}

/** Versions of files the AccessPolicy let through (routes in versions.controller.ts). */
@Injectable()
export class VersionsService {
  constructor(
    private readonly files: FileRepository,
    private readonly versions: FileVersionRepository,
    private readonly remover: VersionRemover,
    private readonly audit: AuditRepository,
  ) {}

  async list(file: FileEntity) {
    const [versions, uploads] = await Promise.all([
      this.versions.list(file.id),
      this.files.uploadsOfVersions(file.id),
    ]);
    return {
      fileId: file.id,
      current: file.version,
      items: versions.map((v) => versionView(v, file.version)),
      uploads: uploads.map((u) => ({
        id: u.id,
        filename: u.filename,
        size: u.size,
        status: u.status,
        createdAt: u.createdAt,
        ...(u.error ? { error: u.error } : {}),
      })),
    };
  }

  /**
   * The file as version `n` of it: the download pipeline reads that version's object, key, size and hash
   * (the object is bound to the version's own id, `objectId`); 404 for a version it does not have.
   */
  async versionView(file: FileEntity, n: number): Promise<FileEntity> {
    const v = await this.versions.find(file.id, n);
    if (!v) throw new NotFoundException('No such version.');
    return {
      ...file,
      status: v.status,
      version: v.version,
      objectId: v.objectId,
      objectKey: v.objectKey,
      keyRef: v.keyRef,
      wrappedKey: v.wrappedKey,
      size: v.size,
      sha1: v.sha1,
      sha256: v.sha256,
      contentType: v.contentType,
      detectedType: v.detectedType,
      encryptedSize: v.encryptedSize,
      storedAt: v.storedAt,
    };
  }

  async restore(file: FileEntity, n: number, userId: string, ip?: string) {
    const outcome = await this.versions.restore(file.id, n, userId);
    if (typeof outcome === 'string') refused(outcome);
    await this.audit.record({
      action: 'file.version_restored',
      userId: file.ownerId,
      fileId: file.id,
      ip,
      details: { filename: file.filename, from: n, version: outcome.version, sha256: outcome.source.sha256 },
    });
    return { fileId: file.id, version: outcome.version, restoredFrom: n };
  }

  async remove(file: FileEntity, n: number, userId: string, ip?: string): Promise<void> {
    const outcome = await this.remover.remove(file.id, n, { reason: 'user', userId, ip });
    if (typeof outcome === 'string') refused(outcome);
  }
}
