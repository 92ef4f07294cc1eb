import { ConflictException, Injectable } from '@nestjs/common';
import { AuditRepository, FileRepository, type FolderEntity, FolderRepository } from '#common';
import { FilesService } from '../files/files.service.js';

/** Files removed per round of a recursive delete (each goes through FilesService.delete). */
const DELETE_BATCH = 100;

/** The public shape of a folder. */
export function folderView(folder: FolderEntity) {
  return {
    id: folder.id,
    name: folder.name,
    parentId: folder.parentId,
    createdAt: folder.createdAt,
    updatedAt: folder.updatedAt,
  };
}

/**
 * Each user's folder tree: create, rename, move (never into itself or below itself), delete when empty or,
 * with `recursive`, with everything in it. The caller has checked ownership through the AccessPolicy.
 */
@Injectable()
export class FoldersService {
  constructor(
    private readonly folders: FolderRepository,
    private readonly files: FileRepository,
    private readonly fileService: FilesService,
    private readonly audit: AuditRepository,
  ) {}

  async create(ownerId: string, parentId: string | null, name: string, ip?: string): Promise<FolderEntity> {
    const folder = await this.folders.create(ownerId, parentId, name);
    await this.audit.record({
      action: 'folder.created',
      userId: ownerId,
      ip,
      details: { folderId: folder.id, name, parentId },
    });
    return folder;
  }

  /** A new name and/or parent (null: the root). Moving a folder into its own subtree is a 409. */
  async update(
    folder: FolderEntity,
    changes: { name?: string; parentId?: string | null },
    ip?: string,
  ): Promise<FolderEntity> {
    await this.folders.withTreeLock(folder.ownerId, async (manager) => {
      if (changes.parentId) {
        const below = await this.folders.subtree(manager, folder.ownerId, folder.id);
        if (below.includes(changes.parentId)) {
          throw new ConflictException('A folder cannot be moved into itself or into one of its subfolders.');
        }
      }
      await this.folders.update(manager, folder.id, changes, changes.name ?? folder.name);
    });
    const moved = changes.parentId !== undefined && changes.parentId !== folder.parentId;
    const renamed = changes.name !== undefined && changes.name !== folder.name;
    if (renamed) {
      await this.audit.record({
        action: 'folder.renamed',
        userId: folder.ownerId,
        ip,
        details: { folderId: folder.id, from: folder.name, to: changes.name! },
      });
    }
    if (moved) {
      await this.audit.record({
        action: 'folder.moved',
        userId: folder.ownerId,
        ip,
        details: {
          folderId: folder.id,
          name: changes.name ?? folder.name,
          from: folder.parentId,
          to: changes.parentId!,
        },
      });
    }
    return (await this.folders.findOwned(folder.ownerId, folder.id)) ?? folder;
  }

  /**
   * Deletes an empty folder; a folder that holds anything needs `recursive`, and then every file in the
   * subtree is deleted through the one deletion path (share links, row, job, object, key, audit) before
   * the folders themselves, deepest first. A file uploaded into the subtree meanwhile is picked up by the
   * next round.
   */
  async delete(
    folder: FolderEntity,
    recursive: boolean,
    ip?: string,
  ): Promise<{ files: number; folders: number }> {
    let deletedFiles = 0;
    for (let round = 0; round < 5; round++) {
      const ids = await this.folders.withTreeLock(folder.ownerId, async (manager) => {
        const contents = await this.folders.contents(manager, folder.id);
        if (!recursive && (contents.files > 0 || contents.folders > 0)) {
          throw new ConflictException(
            `The folder "${folder.name}" is not empty (${contents.files} file(s), ${contents.folders} folder(s) directly in it); ` +
              'delete it with recursive=true to remove everything in it.',
          );
        }
        return this.folders.subtree(manager, folder.ownerId, folder.id);
      });
      for (;;) {
        const batch = await this.files.inFolders(folder.ownerId, ids, DELETE_BATCH);
        if (batch.length === 0) break;
        for (const file of batch) await this.fileService.delete(file, ip);
        deletedFiles += batch.length;
      }
      const removed = await this.folders
        .withTreeLock(folder.ownerId, async (manager) => {
          const now = await this.folders.subtree(manager, folder.ownerId, folder.id);
          await this.folders.deleteMany(manager, now);
          return now.length;
        })
        .catch((error: unknown) => {
          // A file or folder that arrived after the files were removed: its foreign key refuses; go again.
          if ((error as { driverError?: { code?: string } }).driverError?.code === '23503') return null;
          throw error;
        });
      if (removed !== null) {
        await this.audit.record({
          action: 'folder.deleted',
          userId: folder.ownerId,
          ip,
          details: {
            folderId: folder.id,
            name: folder.name,
            files: deletedFiles,
            folders: removed,
            recursive,
          },
        });
        return { files: deletedFiles, folders: removed };
      }
    }
    throw new ConflictException('Files keep arriving in this folder; try deleting it again.');
  }
}
