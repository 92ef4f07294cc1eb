import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager, QueryFailedError, type Repository } from 'typeorm';
import { FolderEntity } from '../entities/folder.entity.js';

/** A name already used in that folder (case-insensitively): the unique indexes of migration 1765450000000. */
export class NameTakenError extends Error {
  constructor(
    readonly kind: 'file' | 'folder',
    readonly taken: string,
  ) {
    super(
      kind === 'file'
        ? `A file named "${taken}" is already in that folder (names are unique per folder, whatever their case).`
        : `A folder named "${taken}" is already there (names are unique per folder, whatever their case).`,
    );
    this.name = 'NameTakenError';
  }
}

/** The target folder was deleted while a file or folder was being put into it. */
export class FolderGoneError extends Error {
  constructor() {
    super('No such folder.');
    this.name = 'FolderGoneError';
  }
}

/** Whether `error` is the violation of that unique index or foreign key. */
export function violates(error: unknown, constraint: string): boolean {
  if (!(error instanceof QueryFailedError)) return false;
  const driver = error.driverError as { code?: string; constraint?: string };
  return (driver.code === '23505' || driver.code === '23503') && driver.constraint === constraint;
}

/** A folder on the way from the root (the root itself not included). */
export interface FolderCrumb {
  id: string;
  name: string;
}

/** What a folder holds, directly and in its whole subtree. */
export interface FolderContents {
  folders: number;
  files: number;
}

/** Each user's folder tree. Every method takes the owner: another user's folder is a missing one. */
@Injectable()
export class FolderRepository {
  private readonly repo: Repository<FolderEntity>;

  constructor(private readonly dataSource: DataSource) {
    this.repo = dataSource.getRepository(FolderEntity);
  }

  findOwned(ownerId: string, id: string): Promise<FolderEntity | null> {
    return this.repo.findOneBy({ id, ownerId });
  }

  /**
   * Runs `work` in a transaction holding the owner's tree lock (a transaction-level advisory lock), so
   * two moves cannot together build a cycle and a recursive delete sees a stable subtree.
   */
  withTreeLock<T>(ownerId: string, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`folders:${ownerId}`]);
      return work(manager);
    });
  }

  async create(ownerId: string, parentId: string | null, name: string): Promise<FolderEntity> {
    const folder = this.repo.create({ ownerId, parentId, name });
    try {
      await this.repo.insert(folder);
    } catch (error) {
      if (violates(error, 'folders_name_uq')) throw new NameTakenError('folder', name);
      if (violates(error, 'folders_parent_id_fkey')) throw new FolderGoneError();
      throw error;
    }
    return (await this.repo.findOneBy({ id: folder.id }))!;
  }

  /** Children of `parentId` (null: the root) by name, at most `limit`, after the name/id `after`. */
  async children(
    ownerId: string,
    parentId: string | null,
    limit: number,
    after?: { name: string; id: string },
  ): Promise<FolderEntity[]> {
    const qb = this.repo
      .createQueryBuilder('d')
      .where('d.owner_id = :ownerId', { ownerId })
      .andWhere(parentId === null ? 'd.parent_id IS NULL' : 'd.parent_id = :parentId', { parentId })
      .orderBy('lower(d.name)', 'ASC')
      .addOrderBy('d.id', 'ASC')
      .limit(limit);
    if (after) {
      qb.andWhere('(lower(d.name), d.id) > (CAST(:name AS text), CAST(:id AS uuid))', {
        name: after.name.toLowerCase(),
        id: after.id,
      });
    }
    return qb.getMany();
  }

  /** The folders from the root down to `id` itself (breadcrumbs); [] for the root. */
  async path(ownerId: string, id: string): Promise<FolderCrumb[]> {
    const rows: Array<{ id: string; name: string; depth: number }> = await this.repo.query(
      `WITH RECURSIVE up AS (
         SELECT id, name, parent_id, 0 AS depth FROM folders WHERE id = $1 AND owner_id = $2
         UNION ALL
         SELECT f.id, f.name, f.parent_id, up.depth + 1 FROM folders f JOIN up ON f.id = up.parent_id
       ) SELECT id, name, depth FROM up ORDER BY depth DESC`,
      [id, ownerId],
    );
    return rows.map((r) => ({ id: r.id, name: r.name }));
  }

  /** `id` and every folder under it, deepest first (the order they can be removed in). */
  async subtree(manager: EntityManager, ownerId: string, id: string): Promise<string[]> {
    const rows: Array<{ id: string }> = await manager.query(
      `WITH RECURSIVE down AS (
         SELECT id, 0 AS depth FROM folders WHERE id = $1 AND owner_id = $2
         UNION ALL
         SELECT f.id, down.depth + 1 FROM folders f JOIN down ON f.parent_id = down.id
       ) SELECT id FROM down ORDER BY depth DESC, id`,
      [id, ownerId],
    );
    return rows.map((r) => r.id);
  }

  /** How many folders and files are directly in `id`. */
  async contents(manager: EntityManager, id: string): Promise<FolderContents> {
    const [row]: Array<{ folders: string; files: string }> = await manager.query(
      `SELECT (SELECT count(*) FROM folders WHERE parent_id = $1) AS folders,
              (SELECT count(*) FROM files WHERE folder_id = $1) AS files`,
      [id],
    );
    return { folders: Number(row?.folders ?? 0), files: Number(row?.files ?? 0) };
  }

  /**
   * Renames and/or moves a folder; false when it is gone. The caller checked the new parent's ownership;
   * `name` is the folder's name after the change (for the 409 message).
   */
  async update(
    manager: EntityManager,
    id: string,
    changes: { name?: string; parentId?: string | null },
    name: string,
  ): Promise<boolean> {
    try {
      const result = await manager.update(FolderEntity, { id }, changes);
      return (result.affected ?? 0) > 0;
    } catch (error) {
      if (violates(error, 'folders_name_uq')) throw new NameTakenError('folder', name);
      if (violates(error, 'folders_parent_id_fkey')) throw new FolderGoneError();
      throw error;
    }
  }

  /** Removes empty folders (deepest first); a folder that still holds a file fails on its foreign key. */
  async deleteMany(manager: EntityManager, ids: string[]): Promise<void> {
    for (const id of ids) await manager.delete(FolderEntity, { id });
  }
}
