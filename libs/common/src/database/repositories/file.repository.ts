import { Injectable } from '@nestjs/common';
import { DataSource, In, type Repository } from 'typeorm';
import { FileEntity, type FileStatus } from '../entities/file.entity.js';
import { keysetPage } from './file-cursor.js';

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
  /** true when the client declared a SHA-256 and it matched; null when it declared none. */
  clientVerified?: boolean | null;
}

@Injectable()
export class FileRepository {
  private readonly repo: Repository<FileEntity>;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(FileEntity);
  }

  async createQueued(
    data: Pick<FileEntity, 'id' | 'ownerId' | 'filename' | 'contentType' | 'size' | 'tempPath'> &
      Partial<Pick<FileEntity, 'keyRef' | 'wrappedKey' | 'clientSha256'>>,
  ): Promise<FileEntity> {
    // insert, not save: save would first SELECT the id to choose between INSERT and UPDATE, and wrap
    // the INSERT in a transaction of its own; this runs once per uploaded file.
    const entity = this.repo.create({ ...data, status: 'queued', attempts: 0 });
    await this.repo.insert(entity);
    return entity;
  }

  /** A resumable upload's row, from its creation: its size reserved against the quota while it arrives. */
  async createReceiving(
    data: Pick<
      FileEntity,
      | 'id'
      | 'ownerId'
      | 'filename'
      | 'contentType'
      | 'size'
      | 'tempPath'
      | 'keyRef'
      | 'wrappedKey'
      | 'uploadExpiresAt'
      | 'clientSha256'
    >,
  ): Promise<FileEntity> {
    const entity = this.repo.create({ ...data, status: 'receiving', attempts: 0 });
    await this.repo.insert(entity);
    return entity;
  }

  /** receiving -> queued once every byte arrived; false when the row is gone or no longer receiving. */
  async markReceived(id: string): Promise<boolean> {
    const result = await this.repo
      .createQueryBuilder()
      .update(FileEntity)
      .set({ status: 'queued', uploadExpiresAt: null })
      .where('id = :id AND status = :receiving', { id, receiving: 'receiving' })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  /** Unfinished resumable uploads whose time is up, oldest first (files_receiving_expiry_idx). */
  expiredReceiving(now: Date, limit = 100): Promise<FileEntity[]> {
    return this.repo
      .createQueryBuilder('f')
      .where('f.status = :receiving AND f.upload_expires_at <= :now', { receiving: 'receiving', now })
      .orderBy('f.upload_expires_at', 'ASC')
      .limit(limit)
      .getMany();
  }

  findById(id: string): Promise<FileEntity | null> {
    return this.repo.findOneBy({ id });
  }

  /** The file when it belongs to `ownerId`; another user's id is indistinguishable from a missing one. */
  findOwned(ownerId: string, id: string): Promise<FileEntity | null> {
    return this.repo.findOneBy({ id, ownerId });
  }

  listForOwner(ownerId: string, limit: number, cursor?: string): Promise<FilePage> {
    const qb = this.repo.createQueryBuilder('f').where('f.owner_id = :ownerId', { ownerId });
    return keysetPage(qb, 'f', limit, cursor);
  }

  async usage(ownerId: string): Promise<{ files: number; bytes: number }> {
    const row = await this.repo
      .createQueryBuilder('f')
      .select('count(*)', 'files')
      .addSelect('coalesce(sum(f.size), 0)', 'bytes')
      .where('f.owner_id = :ownerId', { ownerId })
      .andWhere('f.status <> :failed', { failed: 'failed' })
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
