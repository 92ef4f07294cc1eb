import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager, In, type Repository } from 'typeorm';
import { FileEntity, type FileStatus, type RefusedStatus } from '../entities/file.entity.js';
import { preparedStatement } from '../prepared-statement.js';
import { keysetPage } from './file-cursor.js';
import { type FileListQuery, filePage } from './file-listing.js';
import { FileVersionRepository } from './file-version.repository.js';
import { FolderGoneError, NameTakenError, violates } from './folder.repository.js';

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
  detectedType: string;
  typeWarning: string | null;
  scannedWith: string | null;
}

/** A PostgreSQL session (backend pid) and the advisory lock key (`hashtextextended(key, 0)`) it must hold. */
export interface LockFence {
  pid: number;
  key: string;
}

/** A new upload's row, before it is `queued` (`versionOf`: the upload of a new version of that file). */
export type NewQueuedFile = Pick<
  FileEntity,
  'id' | 'ownerId' | 'filename' | 'contentType' | 'size' | 'tempPath'
> &
  Partial<Pick<FileEntity, 'keyRef' | 'wrappedKey' | 'clientSha256' | 'versionOf' | 'folderId'>>;

/** What a committed upload became: version `version` (now current) of file `fileId`. */
export interface CommittedVersion {
  fileId: string;
  version: number;
}

/** `name` with ` (n)` before its extension (n > 1), cut to fit 255 characters. */
export function numberedName(name: string, n: number): string {
  if (n <= 1) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 17 ? name.slice(dot) : '';
  const suffix = ` (${n})${ext}`;
  const base = [...name.slice(0, name.length - ext.length)];
  return base.slice(0, Math.max(1, 255 - [...suffix].length)).join('') + suffix;
}

/** How often an insert that lost a race for a name picks free names again. */
const NAME_RETRIES = 25;

/** Where a page of `listStale` ended. */
export interface StaleCursor {
  updatedAt: string;
  id: string;
}

/** What the reconciler needs of a file that may have lost its job. */
export interface StaleFile extends Pick<FileEntity, 'id' | 'ownerId' | 'status' | 'tempPath' | 'keyRef'> {
  cursor: StaleCursor;
}

@Injectable()
export class FileRepository {
  private readonly repo: Repository<FileEntity>;

  /** Statements of the hot paths (their columns come from the entity's metadata). */
  private claimStatement?: string;
  private byIdStatement?: string;
  private ownedStatement?: string;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(FileEntity);
  }

  async createQueued(data: NewQueuedFile): Promise<FileEntity> {
    const [entity] = await this.createQueuedMany([data]);
    return entity!;
  }

  /**
   * The rows of one upload request in one INSERT: all of them or none, so a database that fails midway
   * leaves no row of the request behind (docs/security.md item 34).
   */
  async createQueuedMany(files: NewQueuedFile[]): Promise<FileEntity[]> {
    const entities = files.map((data) => this.repo.create({ ...data, status: 'queued', attempts: 0 }));
    // One file whose name is free in its folder (the common case): one statement, without looking up the
    // folder's names first. A taken name inserts nothing here and goes the way of every other request.
    if (entities.length === 1) {
      const inserted = await this.insertQueued(entities, { unlessNameTaken: true }).catch(
        (error: unknown) => {
          throw violates(error, 'files_folder_id_fkey') ? new FolderGoneError() : error;
        },
      );
      if (inserted === 1) return entities;
    }
    await this.insertWithFreeNames(entities, async () => {
      await this.insertQueued(entities);
    });
    return entities;
  }

  /** Inserts the rows; the number inserted (with `unlessNameTaken`, rows whose name is taken are not). */
  private async insertQueued(entities: FileEntity[], { unlessNameTaken = false } = {}): Promise<number> {
    const column = <T>(pick: (entity: FileEntity) => T): T[] => entities.map(pick);
    // One statement for the request's files, plain SQL (every upload runs it). clock_timestamp(), evaluated
    // row by row in upload order, keeps the request's files in that order (now() would give them all the
    // statement's time, and the file list sorts by created_at).
    const inserted: unknown = await this.repo.query(
      preparedStatement(
        unlessNameTaken ? 'tess_files_insert_queued_unless_taken' : 'tess_files_insert_queued',
        `INSERT INTO files (id, owner_id, folder_id, version_of, filename, content_type, size, temp_path, key_ref,
         wrapped_key, client_sha256, status, attempts, created_at, updated_at)
       SELECT id, owner_id, folder_id, version_of, filename, content_type, size, temp_path, key_ref,
         wrapped_key, client_sha256, 'queued', 0, clock_timestamp(), clock_timestamp()
       FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::varchar[], $6::varchar[], $7::bigint[],
         $8::varchar[], $9::varchar[], $10::bytea[], $11::char(64)[])
         WITH ORDINALITY AS t(id, owner_id, folder_id, version_of, filename, content_type, size, temp_path,
           key_ref, wrapped_key, client_sha256, n)
       ORDER BY n ${unlessNameTaken ? 'ON CONFLICT DO NOTHING' : ''} RETURNING id`,
      ),
      [
        column((e) => e.id),
        column((e) => e.ownerId),
        column((e) => e.folderId ?? null),
        column((e) => e.versionOf ?? null),
        column((e) => e.filename),
        column((e) => e.contentType),
        column((e) => e.size),
        column((e) => e.tempPath ?? null),
        column((e) => e.keyRef ?? null),
        column((e) => e.wrappedKey ?? null),
        column((e) => e.clientSha256 ?? null),
      ],
    );
    return (inserted as unknown[]).length;
  }

  /**
   * Gives each new row a name free in its folder (the name it came with, else `name (2).ext`, `(3)`...,
   * compared case-insensitively like files_name_uq), then runs `insert`; a concurrent upload that took a
   * name first makes it pick again. An upload never fails over its name: "keep both" is the default.
   */
  private async insertWithFreeNames(entities: FileEntity[], insert: () => Promise<void>): Promise<void> {
    // The upload row of a new version takes its file's name, outside the folder's names (files_name_uq).
    const named = entities.filter((e) => !e.versionOf);
    const wanted = named.map((e) => e.filename);
    for (let attempt = 0; ; attempt++) {
      await this.assignFreeNames(named, wanted);
      try {
        await insert();
        return;
      } catch (error) {
        if (violates(error, 'files_folder_id_fkey')) throw new FolderGoneError();
        if (!violates(error, 'files_name_uq') || attempt >= NAME_RETRIES) throw error;
      }
    }
  }

  private async assignFreeNames(entities: FileEntity[], wanted: string[]): Promise<void> {
    const taken = new Map<string, Set<string>>();
    const pending = entities.map((entity, i) => ({ entity, name: wanted[i]! }));
    for (let from = 1; pending.length > 0; from += 10) {
      const candidates = pending.flatMap(({ name }) =>
        Array.from({ length: 10 }, (_, k) => numberedName(name, from + k).toLowerCase()),
      );
      const groups = new Map<string, typeof pending>();
      for (const p of pending) {
        const key = `${p.entity.ownerId}/${p.entity.folderId ?? ''}`;
        groups.set(key, [...(groups.get(key) ?? []), p]);
      }
      for (const [key, group] of groups) {
        const first = group[0]!.entity;
        const rows: Array<{ n: string }> = await this.repo.query(
          `SELECT lower(filename) AS n FROM files WHERE owner_id = $1
             AND coalesce(folder_id, '00000000-0000-0000-0000-000000000000'::uuid)
               = coalesce($2::uuid, '00000000-0000-0000-0000-000000000000'::uuid)
             AND lower(filename) = ANY($3::text[]) AND version_of IS NULL`,
          [first.ownerId, first.folderId ?? null, candidates],
        );
        const used = taken.get(key) ?? new Set<string>();
        taken.set(key, used);
        const existing = new Set(rows.map((r) => r.n));
        for (const p of group) {
          for (let n = from; n < from + 10; n++) {
            const name = numberedName(p.name, n);
            const lower = name.toLowerCase();
            if (existing.has(lower) || used.has(lower)) continue;
            used.add(lower);
            p.entity.filename = name;
            pending.splice(pending.indexOf(p), 1);
            break;
          }
        }
      }
    }
  }

  /** One page of the owner's files, filtered and sorted (file-listing.ts). */
  listPage(ownerId: string, query: FileListQuery): Promise<FilePage> {
    // The upload rows of new versions are not files of their own (GET /files/:id/versions shows them).
    const qb = this.repo
      .createQueryBuilder('f')
      .where('f.owner_id = :ownerId', { ownerId })
      .andWhere('f.version_of IS NULL');
    return filePage(qb, query);
  }

  /** The owner's files among `ids` (another user's ids are simply absent). */
  findOwnedMany(ownerId: string, ids: string[]): Promise<FileEntity[]> {
    return ids.length ? this.repo.findBy({ ownerId, id: In(ids) }) : Promise.resolve([]);
  }

  /** The files directly in these folders, at most `limit` (a recursive delete takes them in batches). */
  inFolders(ownerId: string, folderIds: string[], limit: number): Promise<FileEntity[]> {
    return this.repo.find({ where: { ownerId, folderId: In(folderIds) }, take: limit, order: { id: 'ASC' } });
  }

  /**
   * A new name and/or folder (metadata only: the object, its key and hashes stay); false when the row is
   * gone. A name already used in the target folder is a NameTakenError.
   */
  async rename(id: string, changes: { filename?: string; folderId?: string | null }): Promise<boolean> {
    try {
      const result = await this.repo.update({ id }, changes);
      return (result.affected ?? 0) > 0;
    } catch (error) {
      if (violates(error, 'files_name_uq')) {
        const current = await this.repo.findOneBy({ id });
        throw new NameTakenError('file', changes.filename ?? current?.filename ?? '');
      }
      if (violates(error, 'files_folder_id_fkey')) throw new FolderGoneError();
      throw error;
    }
  }

  /**
   * Files `queued` or `processing` whose row has not changed for `graceMs`, oldest first, after `after`
   * (keyset paging on the (status, updated_at) index, so a pass reads only such rows). `cursor` is the
   * exact updated_at (microseconds) as text, for the next page.
   */
  async listStale(graceMs: number, limit: number, after?: StaleCursor): Promise<StaleFile[]> {
    const rows: Array<{
      id: string;
      owner_id: string;
      status: FileStatus;
      temp_path: string | null;
      key_ref: string | null;
      cursor: string;
    }> = await this.repo.query(
      `SELECT id, owner_id, status, temp_path, key_ref, updated_at::text AS cursor FROM files
       WHERE status IN ('queued', 'processing') AND updated_at < now() - make_interval(secs => $1)
         AND ($2::timestamptz IS NULL OR (updated_at, id) > ($2::timestamptz, $3::uuid))
       ORDER BY updated_at, id LIMIT $4`,
      [graceMs / 1000, after?.updatedAt ?? null, after?.id ?? null, limit],
    );
    return rows.map((r) => ({
      id: r.id,
      ownerId: r.owner_id,
      status: r.status,
      tempPath: r.temp_path,
      keyRef: r.key_ref,
      cursor: { updatedAt: r.cursor, id: r.id },
    }));
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
    > &
      Partial<Pick<FileEntity, 'versionOf' | 'folderId'>>,
  ): Promise<FileEntity> {
    const entity = this.repo.create({ ...data, status: 'receiving', attempts: 0 });
    await this.insertWithFreeNames([entity], async () => {
      await this.repo.insert(entity);
    });
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

  /**
   * Records the SHA-256 a client declares for an unfinished upload (tus `Tess-Upload-Sha256`): only while
   * it is `receiving` and has no other declaration, so it is in the row before the row can be queued.
   * False when the row is gone, no longer receiving, or already declares another value.
   */
  async declareClientSha256(id: string, sha256: string): Promise<boolean> {
    const result = await this.repo
      .createQueryBuilder()
      .update(FileEntity)
      .set({ clientSha256: sha256 })
      .where('id = :id AND status = :receiving AND (client_sha256 IS NULL OR client_sha256 = :sha256)', {
        id,
        receiving: 'receiving',
        sha256,
      })
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
    this.byIdStatement ??= preparedStatement(
      'tess_files_by_id',
      `SELECT ${this.columnList()} FROM files WHERE id = $1`,
    );
    return this.one(this.byIdStatement, [id]);
  }

  /**
   * The file when it belongs to `ownerId`; another user's id is indistinguishable from a missing one.
   * Plain SQL, like claimForProcessing: every request on a file (each tus PATCH, every download) runs it.
   * TypeORM's findOneBy builds its query on every call: 2,000 calls in a loop on this project's 2-core VM
   * took 493-676 us of the gateway's CPU and 778-917 us each, this statement 209-281 and 278-340 us.
   */
  findOwned(ownerId: string, id: string): Promise<FileEntity | null> {
    this.ownedStatement ??= preparedStatement(
      'tess_files_owned',
      `SELECT ${this.columnList()} FROM files WHERE id = $1 AND owner_id = $2`,
    );
    return this.one(this.ownedStatement, [id, ownerId]);
  }

  private async one(statement: string, values: unknown[]): Promise<FileEntity | null> {
    const rows: Array<Record<string, unknown>> = await this.repo.query(statement, values);
    const row = rows[0];
    return row ? this.hydrate(row) : null;
  }

  /** Every column of the entity, named (never `*`: see preparedStatement). */
  private columnList(): string {
    return this.repo.metadata.columns.map((c) => `"${c.databaseName}"`).join(', ');
  }

  listForOwner(ownerId: string, limit: number, cursor?: string): Promise<FilePage> {
    // The upload rows of new versions are not files of their own (GET /files/:id/versions shows them).
    const qb = this.repo
      .createQueryBuilder('f')
      .where('f.owner_id = :ownerId', { ownerId })
      .andWhere('f.version_of IS NULL');
    return keysetPage(qb, 'f', limit, cursor);
  }

  /** Every upload row of the owner, the ones bringing new versions of a file included (the jobs API). */
  listUploadsForOwner(ownerId: string, limit: number, cursor?: string): Promise<FilePage> {
    const qb = this.repo.createQueryBuilder('f').where('f.owner_id = :ownerId', { ownerId });
    return keysetPage(qb, 'f', limit, cursor);
  }

  /**
   * For each given stored file, the owner's oldest *other* stored file with the same SHA-256 (one query;
   * never another owner's, which would tell that someone else holds the same content).
   */
  async twinsOf(
    ownerId: string,
    files: ReadonlyArray<Pick<FileEntity, 'id' | 'sha256' | 'status'>>,
  ): Promise<Map<string, Pick<FileEntity, 'id' | 'filename' | 'createdAt'>>> {
    const hashes = [...new Set(files.filter((f) => f.status === 'stored' && f.sha256).map((f) => f.sha256!))];
    const twins = new Map<string, Pick<FileEntity, 'id' | 'filename' | 'createdAt'>>();
    if (hashes.length === 0) return twins;
    const rows: Array<{ id: string; filename: string; created_at: Date; sha256: string }> =
      await this.repo.query(
        `SELECT id, filename, created_at, sha256 FROM files
        WHERE owner_id = $1 AND status = 'stored' AND sha256 = ANY($2::varchar[])
        ORDER BY created_at, id`,
        [ownerId, hashes],
      );
    for (const file of files) {
      if (file.status !== 'stored' || !file.sha256) continue;
      const twin = rows.find((r) => r.sha256 === file.sha256 && r.id !== file.id);
      if (twin) twins.set(file.id, { id: twin.id, filename: twin.filename, createdAt: twin.created_at });
    }
    return twins;
  }

  /** New-version upload rows of `fileId` still in the pipeline or refused (GET /files/:id/versions). */
  uploadsOfVersions(fileId: string): Promise<FileEntity[]> {
    return this.repo.find({ where: { versionOf: fileId }, order: { createdAt: 'DESC' } });
  }

  /**
   * Files (identities, not the upload rows of new versions) and bytes: every row's current or arriving
   * bytes, plus each older version's object once (a restored copy shares its object, so it is not counted
   * twice). Failed and refused uploads hold nothing.
   */
  async usage(ownerId: string): Promise<{ files: number; bytes: number }> {
    const [row]: Array<{ files: string; bytes: string }> = await this.repo.query(
      `SELECT
         (SELECT count(*) FROM files WHERE owner_id = $1 AND version_of IS NULL
            AND status NOT IN ('failed', 'rejected', 'infected')) AS files,
         (SELECT coalesce(sum(size), 0) FROM files WHERE owner_id = $1
            AND status NOT IN ('failed', 'rejected', 'infected'))
         + (SELECT coalesce(sum(o.size), 0) FROM (
              SELECT DISTINCT ON (v.object_id) v.size FROM file_versions v JOIN files f ON f.id = v.file_id
              WHERE v.owner_id = $1 AND v.object_id <> coalesce(f.object_id, f.id)
              ORDER BY v.object_id) o) AS bytes`,
      [ownerId],
    );
    return { files: Number(row?.files ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  /**
   * Moves queued/failed/processing -> processing and returns the claimed row (one round trip); null when
   * the file is gone or already final.
   */
  async claimForProcessing(id: string): Promise<FileEntity | null> {
    // Plain SQL: every job runs it (a query builder costs more CPU than a small file's whole row update).
    // A prepared statement (parsed once per connection) naming its columns: `RETURNING *` would change
    // its result type under the prepared plan when a migration adds a column.
    this.claimStatement ??= preparedStatement(
      'tess_files_claim',
      `UPDATE files SET status = 'processing', processing_started_at = now(), attempts = attempts + 1,
         error = NULL, updated_at = CURRENT_TIMESTAMP
       WHERE id = $1 AND status IN ('queued', 'processing', 'failed')
       RETURNING ${this.columnList()}`,
    );
    const [rows]: [Array<Record<string, unknown>>, number] = await this.repo.query(this.claimStatement, [id]);
    const row = rows[0];
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

  /**
   * Commits the stored state only if the file is still being processed (a deleted file stays deleted) and,
   * with a `fence`, only while that PostgreSQL session still holds the file's advisory lock: a worker
   * whose lock session was killed (pg_terminate_backend, a network cut) cannot commit a file that another
   * run now owns (docs/security.md item 34).
   */
  /**
   * In the same transaction, the stored upload becomes the current version of its file
   * (FileVersionRepository.commitUpload): version 1 of itself, or the next version of the file it is a new
   * version of (its row then folds into that file). `andThen` runs last in that transaction once the row
   * is committed (the worker's `file.stored` audit event: one commit for both). False when nothing was
   * committed.
   */
  async markStored(
    id: string,
    facts: StoredFileFacts,
    fence?: LockFence,
    andThen?: (m: EntityManager, committed: CommittedVersion) => Promise<void>,
  ): Promise<CommittedVersion | false> {
    return this.repo.manager.transaction(async (m) => {
      // Plain SQL, like claimForProcessing: every stored file runs it.
      const fenced = fence
        ? `AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.pid = $13
           AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($14, 0))`
        : '';
      const [rows]: [
        Array<{ id: string; version_of: string | null; again: number | null; next: number }>,
        number,
      ] = await m.query(
        preparedStatement(
          fence ? 'tess_files_mark_stored_fenced' : 'tess_files_mark_stored',
          `UPDATE files SET status = 'stored', error = NULL, temp_path = NULL, stored_at = now(),
           finished_at = now(), updated_at = CURRENT_TIMESTAMP, sha1 = $2, sha256 = $3, encrypted_size = $4,
           storage_driver = $5, object_key = $6, key_ref = $7, wrapped_key = $8,
           client_verified = $9, detected_type = $10, type_warning = $11,
           scanned_with = $12
         WHERE id = $1 AND status = 'processing' ${fenced}
         RETURNING id, version_of, ${FileVersionRepository.OWN_VERSIONS}`,
        ),
        [
          id,
          facts.sha1,
          facts.sha256,
          facts.encryptedSize,
          facts.storageDriver,
          facts.objectKey,
          facts.keyRef,
          facts.wrappedKey,
          facts.clientVerified ?? null,
          facts.detectedType,
          facts.typeWarning,
          facts.scannedWith,
          ...(fence ? [fence.pid, fence.key] : []),
        ],
      );
      const row = rows[0];
      if (!row) return false;
      const committed = await FileVersionRepository.commitUpload(m, {
        id: row.id,
        versionOf: row.version_of,
        again: row.again,
        next: row.next,
      });
      await andThen?.(m, committed);
      return committed;
    });
  }

  /**
   * Marks a file failed only if it is still `queued`/`processing` and unchanged since `cursor` (the row the
   * reconciler looked at): a worker that picked it up meanwhile wins. True when it was marked.
   */
  async markFailedIfUnchanged(id: string, cursor: StaleCursor, error: string): Promise<boolean> {
    // TypeORM answers an UPDATE with [rows, rowCount].
    const [rows]: [unknown[], number] = await this.repo.query(
      `UPDATE files SET status = 'failed', error = $3, finished_at = now(), updated_at = now()
       WHERE id = $1 AND status IN ('queued', 'processing') AND updated_at = $2::timestamptz RETURNING id`,
      [id, cursor.updatedAt, error.slice(0, 2000)],
    );
    return rows.length > 0;
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

  /**
   * Marks the file corrupt when its current object is `objectId` (default: the file's own id, or its
   * current object); the versions with that object too. True when the file or a version was stored.
   */
  async markCorrupt(id: string, error: string, objectId?: string): Promise<boolean> {
    const [rows]: [unknown[], number] = await this.repo.query(
      `UPDATE files SET status = 'corrupt', error = $2, updated_at = now()
       WHERE id = $1 AND status = 'stored' AND ($3::uuid IS NULL OR coalesce(object_id, id) = $3::uuid)
       RETURNING id`,
      [id, error.slice(0, 2000), objectId ?? null],
    );
    const [versions]: [unknown[], number] = await this.repo.query(
      `UPDATE file_versions SET status = 'corrupt' WHERE file_id = $1 AND status = 'stored'
         AND object_id = coalesce($2::uuid, (SELECT coalesce(object_id, id) FROM files WHERE id = $1))
       RETURNING version`,
      [id, objectId ?? null],
    );
    return rows.length > 0 || versions.length > 0;
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

  /** A re-wrapped data key of object `id`: the file rows whose current object it is and its versions. */
  async updateKey(id: string, keyRef: string, wrappedKey: Buffer | null): Promise<void> {
    await this.repo.manager.transaction(async (m) => {
      await m.query('UPDATE files SET key_ref = $2, wrapped_key = $3 WHERE coalesce(object_id, id) = $1', [
        id,
        keyRef,
        wrappedKey,
      ]);
      await m.query('UPDATE file_versions SET key_ref = $2, wrapped_key = $3 WHERE object_id = $1', [
        id,
        keyRef,
        wrappedKey,
      ]);
    });
  }

  async delete(id: string): Promise<void> {
    await this.repo.delete({ id });
  }

  /** Some of the owner's files, any status (the delete-user job takes them a batch at a time). */
  batchOfOwner(ownerId: string, limit: number): Promise<FileEntity[]> {
    return this.repo.find({ where: { ownerId }, order: { id: 'ASC' }, take: limit });
  }

  /** Every file by status, and the bytes of the stored ones, plain and encrypted (the admin's system page). */
  async totals(): Promise<{ byStatus: Record<string, number>; storedBytes: number; encryptedBytes: number }> {
    const rows: Array<{ status: string; files: string; bytes: string; encrypted: string }> =
      await this.repo.query(
        `SELECT status, count(*) AS files, coalesce(sum(size), 0) AS bytes,
                coalesce(sum(encrypted_size), 0) AS encrypted
           FROM files GROUP BY status`,
      );
    const byStatus: Record<string, number> = {};
    let storedBytes = 0;
    let encryptedBytes = 0;
    for (const r of rows) {
      byStatus[r.status] = Number(r.files);
      if (r.status === 'stored' || r.status === 'corrupt') {
        storedBytes += Number(r.bytes);
        encryptedBytes += Number(r.encrypted);
      }
    }
    return { byStatus, storedBytes, encryptedBytes };
  }

  countByStatus(statuses: FileStatus[]): Promise<number> {
    return this.repo.countBy({ status: In(statuses) });
  }
}
