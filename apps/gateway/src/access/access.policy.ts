import { Injectable, NotFoundException } from '@nestjs/common';
import { type FileEntity, FileRepository, type FolderEntity, FolderRepository } from '#common';
import type { Principal } from './principal.js';

/**
 * The one place that answers "may this principal do this to that file". Routes ask it instead of
 * looking files up per user themselves. Anything a principal may not touch answers 404, never 403,
 * so foreign ids cannot be told apart from ids that do not exist.
 */
@Injectable()
export class AccessPolicy {
  constructor(
    private readonly files: FileRepository,
    private readonly folders: FolderRepository,
  ) {}

  /** The file if the principal may read it (metadata, content, verify, its job), else null. */
  async findReadableFile(principal: Principal, fileId: string): Promise<FileEntity | null> {
    switch (principal.kind) {
      case 'user':
        return this.files.findOwned(principal.userId, fileId);
      case 'share':
        // Only the file the link names, and only while its owner still owns it.
        return fileId === principal.fileId ? this.files.findOwned(principal.ownerId, fileId) : null;
    }
  }

  /** The file if the principal may read it; 404 otherwise. */
  async readableFile(principal: Principal, fileId: string): Promise<FileEntity> {
    return found(await this.findReadableFile(principal, fileId));
  }

  /**
   * Whether the principal may use the admin area and API (docs/security.md item 37): a signed-in admin
   * by session or token. Administering is about accounts, quotas, invites and jobs: it never makes
   * another user's file readable (findReadableFile above has no admin case, on purpose).
   */
  administers(principal: Principal): boolean {
    switch (principal.kind) {
      case 'user':
        return principal.role === 'admin';
      case 'share':
        return false;
    }
  }

  /** The file if the principal may delete it (its owner only); 404 otherwise. */
  async deletableFile(principal: Principal, fileId: string): Promise<FileEntity> {
    switch (principal.kind) {
      case 'user':
        return found(await this.files.findOwned(principal.userId, fileId));
      case 'share':
        // A link reads; it never deletes.
        return found(null);
    }
  }

  /** The folder if the principal owns it; 404 otherwise (another user's folder looks missing). */
  folder(principal: Principal, folderId: string): Promise<FolderEntity> {
    return this.ownersFolder(principal.kind === 'user' ? principal.userId : null, folderId);
  }

  /** The folder when `ownerId` owns it (an upload's target folder); 404 otherwise. */
  async ownersFolder(ownerId: string | null, folderId: string): Promise<FolderEntity> {
    const folder = ownerId ? await this.folders.findOwned(ownerId, folderId) : null;
    if (!folder) throw new NotFoundException('No such folder.');
    return folder;
  }

  /** A file the principal may rename or move: the same rule as deleting (its owner only). */
  modifiableFile(principal: Principal, fileId: string): Promise<FileEntity> {
    return this.deletableFile(principal, fileId);
  }
}

function found(file: FileEntity | null): FileEntity {
  if (!file) throw new NotFoundException('No such file.');
  return file;
}
