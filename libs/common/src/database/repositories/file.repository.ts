import { Injectable } from '@nestjs/common';
import { DataSource, In, type Repository } from 'typeorm';
import { FileEntity, type FileStatus } from '../entities/file.entity.js';

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
}

/** Cursor = base64url of `<createdAt ISO>|<id>`, newest first. */
function encodeCursor(file: FileEntity): string {
  return Buffer.from(`${file.createdAt.toISOString()}|${file.id}`).toString('base64url');
}

export class InvalidCursorError extends Error {
  constructor() {
    super('cursor is not valid; use the nextCursor value of a previous page');
    this.name = 'InvalidCursorError';
  }
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (!id || Number.isNaN(createdAt.getTime()) || !/^[0-9a-f-]{36}$/i.test(id))
    throw new InvalidCursorError();
  return { createdAt, id };
}

@Injectable()
export class FileRepository {
  private readonly repo: Repository<FileEntity>;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(FileEntity);
  }

  createQueued(
    data: Pick<FileEntity, 'id' | 'ownerId' | 'filename' | 'contentType' | 'size' | 'tempPath'>,
  ): Promise<FileEntity> {
    return this.repo.save(this.repo.create({ ...data, status: 'queued', attempts: 0 }));
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
      .take(limit + 1);
    if (cursor) {
      const c = decodeCursor(cursor);
      qb.andWhere('(f.created_at, f.id) < (:createdAt, :id)', c);
    }
    const rows = await qb.getMany();
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!) : null };
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

  /** Moves queued/failed/processing -> processing; returns null when the file is gone or already final. */
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
      .execute();
    return (result.affected ?? 0) > 0 ? this.findById(id) : null;
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
