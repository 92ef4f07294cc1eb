import { Injectable } from '@nestjs/common';
import { DataSource, In, type Repository } from 'typeorm';
import { FileEntity, type FileStatus, type RefusedStatus } from '../entities/file.entity.js';
import { decodeCursor, encodeCursor } from './file-cursor.js';

export { InvalidCursorError } from './file-cursor.js';

export interface FilePage {
  items: FileEntity[];
  nextCursor: string | null;
}

export interface StoredFileFacts {
  sha1: string;
  sha256: string;
  encryptedSize: number;
  storageDriver: string;
  objectKey: string;
  keyRef: string;
  wrappedKey: Buffer | null;
  detectedType: string;
  typeWarning: string | null;
  scannedWith: string | null;
}

/** created_at as text with all six fractional digits, for the cursor. */
const CURSOR_TIME_SQL = `to_char(f.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

@Injectable()
export class FileRepository {
  private readonly repo: Repository<FileEntity>;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(FileEntity);
  }

  async createQueued(
    data: Pick<FileEntity, 'id' | 'ownerId' | 'filename' | 'contentType' | 'size' | 'tempPath'> &
      Partial<Pick<FileEntity, 'keyRef' | 'wrappedKey'>>,
  ): Promise<FileEntity> {
    // insert, not save: save would first SELECT the id to choose between INSERT and UPDATE, and wrap
    // the INSERT in a transaction of its own; this runs once per uploaded file.
    const entity = this.repo.create({ ...data, status: 'queued', attempts: 0 });
    await this.repo.insert(entity);
    return entity;
  }

  findById(id: string): Promise<FileEntity | null> {
    return this.repo.findOneBy({ id });
  }

  /** The file when it belongs to `ownerId`; another user's id is indistinguishable from a missing one. */
  findOwned(ownerId: string, id: string): Promise<FileEntity | null> {
    return this.repo.findOneBy({ id, ownerId });
  }

  async listForOwner(ownerId: string, limit: number, cursor?: string): Promise<FilePage> {
    const qb = this.repo
      .createQueryBuilder('f')
      .where('f.owner_id = :ownerId', { ownerId })
      .orderBy('f.created_at', 'DESC')
      .addOrderBy('f.id', 'DESC')
      .addSelect(CURSOR_TIME_SQL, 'cursor_time')
      .limit(limit + 1);
    if (cursor) {
      const c = decodeCursor(cursor);
      qb.andWhere('(f.created_at, f.id) < (CAST(:createdAt AS timestamptz), CAST(:id AS uuid))', c);
    }
    const { entities, raw } = await qb.getRawAndEntities<{ cursor_time: string }>();
    const items = entities.slice(0, limit);
    const last = items[items.length - 1];
    return {
      items,
      nextCursor:
        entities.length > limit && last ? encodeCursor(raw[items.length - 1]!.cursor_time, last.id) : null,
    };
  }

  async usage(ownerId: string): Promise<{ files: number; bytes: number }> {
    const row = await this.repo
      .createQueryBuilder('f')
      .select('count(*)', 'files')
      .addSelect('coalesce(sum(f.size), 0)', 'bytes')
      .where('f.owner_id = :ownerId', { ownerId })
      .andWhere('f.status NOT IN (:...uncounted)', { uncounted: ['failed', 'rejected', 'infected'] })
      .getRawOne<{ files: string; bytes: string }>();
    return { files: Number(row?.files ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  /**
   * Moves queued/failed/processing -> processing and returns the claimed row (one round trip); null when
   * the file is gone or already final.
   */
  async claimForProcessing(id: string): Promise<FileEntity | null> {
    const result = await this.repo
      .createQueryBuilder()
      .update(FileEntity)
      .set({
        status: 'processing',
        processingStartedAt: () => 'now()',
        attempts: () => 'attempts + 1',
        error: null,
      })
      .where('id = :id', { id })
      .andWhere('status IN (:...statuses)', { statuses: ['queued', 'processing', 'failed'] })
      .returning('*')
      .execute();
    const row = (result.raw as Array<Record<string, unknown>>)[0];
    return row ? this.hydrate(row) : null;
  }

  /** An entity from a raw `RETURNING *` row, with the same conversions (bigint, dates) a SELECT applies. */
  private hydrate(row: Record<string, unknown>): FileEntity {
    const entity = this.repo.create();
    const driver = this.repo.manager.connection.driver;
    for (const column of this.repo.metadata.columns) {
      if (column.databaseName in row) {
        column.setEntityValue(entity, driver.prepareHydratedValue(row[column.databaseName], column));
      }
    }
    return entity;
  }

  /** Commits the stored state only if the file is still being processed (a deleted file stays deleted). */
  async markStored(id: string, facts: StoredFileFacts): Promise<boolean> {
    const result = await this.repo.update(
      { id, status: 'processing' },
      {
        ...facts,
        status: 'stored',
        error: null,
        tempPath: null,
        storedAt: new Date(),
        finishedAt: new Date(),
      },
    );
    return (result.affected ?? 0) > 0;
  }

  /** A failed attempt that will be retried: back to queued, with the reason kept for the user to see. */
  async markRetrying(id: string, error: string): Promise<void> {
    await this.repo.update({ id, status: 'processing' }, { status: 'queued', error: error.slice(0, 2000) });
  }

  async markFailed(id: string, error: string): Promise<void> {
    await this.repo.update(
      { id, status: In(['queued', 'processing']) },
      { status: 'failed', error: error.slice(0, 2000), finishedAt: new Date() },
    );
  }

  /**
   * A file the content checks refused (`rejected` by the type policy, `infected` by the scanner): final,
   * with the reason for the user; the detected type is kept when the sniffer got that far.
   */
  async markRefused(
    id: string,
    status: RefusedStatus,
    error: string,
    detectedType: string | null,
  ): Promise<void> {
    await this.repo.update(
      { id, status: In(['queued', 'processing']) },
      { status, error: error.slice(0, 2000), detectedType, tempPath: null, finishedAt: new Date() },
    );
  }

  async markCorrupt(id: string, error: string): Promise<boolean> {
    const result = await this.repo.update(
      { id, status: 'stored' },
      { status: 'corrupt', error: error.slice(0, 2000) },
    );
    return (result.affected ?? 0) > 0;
  }

  /** Files holding a wrapped data key, in id order after `afterId` (for master key rotation). */
  listWrapped(afterId: string, limit: number): Promise<FileEntity[]> {
    return this.repo
      .createQueryBuilder('f')
      .where('f.wrapped_key IS NOT NULL')
      .andWhere('f.id > :afterId', { afterId })
      .orderBy('f.id', 'ASC')
      .take(limit)
      .getMany();
  }

  async updateKey(id: string, keyRef: string, wrappedKey: Buffer | null): Promise<void> {
    await this.repo.update({ id }, { keyRef, wrappedKey });
  }

  async delete(id: string): Promise<void> {
    await this.repo.delete({ id });
  }

  countByStatus(statuses: FileStatus[]): Promise<number> {
    return this.repo.countBy({ status: In(statuses) });
  }
}
