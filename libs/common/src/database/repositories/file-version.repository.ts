import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { preparedStatement } from '../prepared-statement.js';

/** One stored version of a file (a `file_versions` row; docs/architecture.md, "File versions"). */
export interface FileVersion {
  fileId: string;
  version: number;
  /** The id its object and data key were made under (header file id; `objects/<objectId>`). */
  objectId: string;
  ownerId: string;
  uploadedBy: string | null;
  status: 'stored' | 'corrupt';
  contentType: string;
  size: number;
  sha1: string;
  sha256: string;
  detectedType: string | null;
  typeWarning: string | null;
  scannedWith: string | null;
  clientSha256: string | null;
  clientVerified: boolean | null;
  encryptedSize: number;
  storageDriver: string;
  objectKey: string;
  keyRef: string;
  wrappedKey: Buffer | null;
  /** The version this one is a restored copy of (same object and key). */
  restoredFrom: number | null;
  createdAt: Date;
  storedAt: Date;
}

/** A removed version, and whether no other version uses its object any more (then it and its key go). */
export interface RemovedVersion {
  removed: FileVersion;
  orphaned: boolean;
  /** The file's name (for the audit event, which outlives the file). */
  filename: string;
}

/** Why a version cannot be removed or restored. */
export type VersionRefusal = 'no-file' | 'no-version' | 'current' | 'not-stored';

const COLUMNS = `file_id, version, object_id, owner_id, uploaded_by, status, content_type, size, sha1, sha256,
  detected_type, type_warning, scanned_with, client_sha256, client_verified, encrypted_size, storage_driver,
  object_key, key_ref, wrapped_key, restored_from, created_at, stored_at`;

/** A file's row set from its version `v` (the current one now); the version count is the caller's. */
const CURRENT_FROM_V = `status = v.status, error = NULL, content_type = v.content_type, size = v.size,
  sha1 = v.sha1, sha256 = v.sha256, detected_type = v.detected_type, type_warning = v.type_warning,
  scanned_with = v.scanned_with, client_sha256 = v.client_sha256, client_verified = v.client_verified,
  encrypted_size = v.encrypted_size, storage_driver = v.storage_driver, object_key = v.object_key,
  key_ref = v.key_ref, wrapped_key = v.wrapped_key,
  object_id = CASE WHEN v.object_id = f.id THEN NULL ELSE v.object_id END,
  stored_at = v.stored_at, version = v.version, updated_at = now()`;

/** The same columns of the row aliased `v`. */
const V_COLUMNS = COLUMNS.split(',')
  .map((c) => `v.${c.trim()}`)
  .join(', ');

type Row = Record<string, unknown>;

function toVersion(r: Row): FileVersion {
  return {
    fileId: r.file_id as string,
    version: Number(r.version),
    objectId: r.object_id as string,
    ownerId: r.owner_id as string,
    uploadedBy: (r.uploaded_by as string | null) ?? null,
    status: r.status as FileVersion['status'],
    contentType: r.content_type as string,
    size: Number(r.size),
    sha1: (r.sha1 as string).trim(),
    sha256: (r.sha256 as string).trim(),
    detectedType: (r.detected_type as string | null) ?? null,
    typeWarning: (r.type_warning as string | null) ?? null,
    scannedWith: (r.scanned_with as string | null) ?? null,
    clientSha256: r.client_sha256 ? (r.client_sha256 as string).trim() : null,
    clientVerified: (r.client_verified as boolean | null) ?? null,
    encryptedSize: Number(r.encrypted_size),
    storageDriver: r.storage_driver as string,
    objectKey: r.object_key as string,
    keyRef: r.key_ref as string,
    wrappedKey: (r.wrapped_key as Buffer | null) ?? null,
    restoredFrom: r.restored_from === null || r.restored_from === undefined ? null : Number(r.restored_from),
    createdAt: new Date(r.created_at as string),
    storedAt: new Date(r.stored_at as string),
  };
}

/**
 * The version rows of files, and the transactions that change which version is current. Each one locks the
 * file's row first (`FOR UPDATE`), so a commit of a new version, a restore and a removal of the same file
 * are serialized and `version`/`version_count` on the file always agree with its rows.
 */
@Injectable()
export class FileVersionRepository {
  constructor(private readonly dataSource: DataSource) {}

  async list(fileId: string): Promise<FileVersion[]> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM file_versions WHERE file_id = $1 ORDER BY version DESC`,
      [fileId],
    );
    return rows.map(toVersion);
  }

  /**
   * The version an upload row brought, once that row has been folded into its file (its object id is the
   * upload's id; a restore reuses the object, so the first version with it is the one uploaded).
   */
  async broughtBy(ownerId: string, uploadId: string): Promise<FileVersion | null> {
    const [row]: Row[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM file_versions WHERE object_id = $1 AND owner_id = $2 ORDER BY version LIMIT 1`,
      [uploadId, ownerId],
    );
    return row ? toVersion(row) : null;
  }

  async find(fileId: string, version: number): Promise<FileVersion | null> {
    const [row]: Row[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM file_versions WHERE file_id = $1 AND version = $2`,
      [fileId, version],
    );
    return row ? toVersion(row) : null;
  }

  /**
   * What a first upload's commit asks of the versions of its own row (`files` in an UPDATE ... RETURNING
   * that moved the row to stored, so no round trip of its own): `again`, the version this object was
   * committed as before (a row put back to processing by hand: refreshed), else null; `next`, the number a
   * new version takes.
   */
  static readonly OWN_VERSIONS = `(SELECT v.version FROM file_versions v WHERE v.file_id = files.id
      AND v.object_id = files.id ORDER BY v.version DESC LIMIT 1) AS again,
    (SELECT coalesce(max(v.version), 0) + 1 FROM file_versions v WHERE v.file_id = files.id) AS next`;

  /**
   * Inside the commit of an upload row (FileRepository.markStored, same transaction): records the row's
   * facts as the next version of its file and makes it current. A first upload (`version_of` null) becomes
   * version 1 of itself, `again` and `next` being its OWN_VERSIONS; a new version's row is folded into the
   * file it belongs to and deleted. Returns the file and the version number.
   */
  static async commitUpload(
    m: EntityManager,
    upload: { id: string; versionOf: string | null; again: number | string | null; next: number | string },
  ): Promise<{ fileId: string; version: number }> {
    const fileId = upload.versionOf ?? upload.id;
    if (!upload.versionOf) {
      // The caller's UPDATE of this very row holds its lock already.
      const { again, next } = upload;
      if (again === null) return FileVersionRepository.insertCurrent(m, fileId, Number(next), upload.id);
      await m.query(
        `UPDATE file_versions v SET status = 'stored', size = s.size, sha1 = s.sha1, sha256 = s.sha256,
           detected_type = s.detected_type, type_warning = s.type_warning, scanned_with = s.scanned_with,
           client_verified = s.client_verified, encrypted_size = s.encrypted_size,
           storage_driver = s.storage_driver, object_key = s.object_key, key_ref = s.key_ref,
           wrapped_key = s.wrapped_key, stored_at = coalesce(s.stored_at, now())
         FROM files s WHERE s.id = $1 AND v.object_id = $1`,
        [fileId],
      );
      await FileVersionRepository.makeCurrent(m, fileId, Number(again));
      return { fileId, version: Number(again) };
    }
    await m.query('SELECT 1 FROM files WHERE id = $1 FOR UPDATE', [fileId]);
    const version = await FileVersionRepository.nextNumber(m, fileId);
    const committed = await FileVersionRepository.insertCurrent(m, fileId, version, upload.id);
    await m.query('DELETE FROM files WHERE id = $1', [upload.id]);
    return committed;
  }

  /**
   * Records upload `uploadId` as version `version` of `fileId` and makes it the current one, in one
   * statement (every stored file runs it): the file's row is set from the version the CTE inserts, which
   * its count of versions (a snapshot from before the statement) does not include yet.
   */
  private static async insertCurrent(
    m: EntityManager,
    fileId: string,
    version: number,
    uploadId: string,
  ): Promise<{ fileId: string; version: number }> {
    await m.query(
      preparedStatement(
        'tess_file_versions_insert_current',
        `WITH v AS (
         INSERT INTO file_versions (${COLUMNS})
         SELECT $1, $2, s.id, s.owner_id, s.owner_id, 'stored', s.content_type, s.size, s.sha1, s.sha256,
           s.detected_type, s.type_warning, s.scanned_with, s.client_sha256, s.client_verified, s.encrypted_size,
           s.storage_driver, s.object_key, s.key_ref, s.wrapped_key, NULL, s.created_at, coalesce(s.stored_at, now())
         FROM files s WHERE s.id = $3 RETURNING ${COLUMNS})
       UPDATE files f SET ${CURRENT_FROM_V},
         version_count = (SELECT count(*) FROM file_versions WHERE file_id = f.id) + 1
       FROM v WHERE f.id = $1`,
      ),
      [fileId, version, uploadId],
    );
    return { fileId, version };
  }

  /**
   * Restores version `version` of `fileId`: a new version (the next number) that is a copy of it, sharing
   * its object and wrapped key (no re-encryption; the object is still verified on every read), becomes
   * current. `uploadedBy` is who restored it.
   */
  async restore(
    fileId: string,
    version: number,
    uploadedBy: string,
  ): Promise<{ version: number; source: FileVersion } | VersionRefusal> {
    return this.dataSource.transaction(async (m) => {
      const refusal = await this.lockFile(m, fileId);
      if (refusal) return refusal;
      const [row]: Row[] = await m.query(
        `SELECT ${COLUMNS} FROM file_versions WHERE file_id = $1 AND version = $2`,
        [fileId, version],
      );
      if (!row) return 'no-version';
      const source = toVersion(row);
      if (source.status !== 'stored') return 'not-stored';
      const next = await FileVersionRepository.nextNumber(m, fileId);
      await m.query(
        `INSERT INTO file_versions (${COLUMNS})
         SELECT file_id, $3, object_id, owner_id, $4, status, content_type, size, sha1, sha256, detected_type,
           type_warning, scanned_with, client_sha256, client_verified, encrypted_size, storage_driver, object_key,
           key_ref, wrapped_key, version, now(), now()
         FROM file_versions WHERE file_id = $1 AND version = $2`,
        [fileId, version, next, uploadedBy],
      );
      await FileVersionRepository.makeCurrent(m, fileId, next);
      return { version: next, source };
    });
  }

  /**
   * Removes a version that is not the current one; `orphaned` when no version of any file still uses its
   * object (then the caller deletes the object and its key, after this commit).
   */
  async remove(fileId: string, version: number): Promise<RemovedVersion | VersionRefusal> {
    return this.dataSource.transaction(async (m) => {
      const refusal = await this.lockFile(m, fileId);
      if (refusal) return refusal;
      const [file]: Array<{ version: number; filename: string }> = await m.query(
        'SELECT version, filename FROM files WHERE id = $1',
        [fileId],
      );
      if (file!.version === version) {
        const [exists]: Row[] = await m.query(
          'SELECT 1 FROM file_versions WHERE file_id = $1 AND version = $2',
          [fileId, version],
        );
        return exists ? 'current' : 'no-version';
      }
      // TypeORM answers a DELETE ... RETURNING with [rows, rowCount].
      const [rows]: [Row[], number] = await m.query(
        `DELETE FROM file_versions WHERE file_id = $1 AND version = $2 RETURNING ${COLUMNS}`,
        [fileId, version],
      );
      if (!rows[0]) return 'no-version';
      const removed = toVersion(rows[0]);
      const [used]: Row[] = await m.query(
        `SELECT 1 FROM file_versions WHERE object_id = $1
         UNION ALL SELECT 1 FROM files WHERE coalesce(object_id, id) = $1 AND status IN ('stored', 'corrupt')
         LIMIT 1`,
        [removed.objectId],
      );
      await m.query(
        'UPDATE files SET version_count = (SELECT count(*) FROM file_versions WHERE file_id = $1) WHERE id = $1',
        [fileId],
      );
      return { removed, orphaned: !used, filename: file!.filename };
    });
  }

  /**
   * Versions the retention policy removes, oldest first: beyond the newest `keep` of their file, or (with
   * `maxAgeMs`) created longer ago than that; only `fileId`'s with one. Never a file's current version.
   */
  async expired(
    keep: number,
    maxAgeMs: number | undefined,
    limit: number,
    fileId?: string,
  ): Promise<FileVersion[]> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT ${V_COLUMNS} FROM (
         SELECT v.*, row_number() OVER (PARTITION BY v.file_id ORDER BY v.version DESC) AS rank
         FROM file_versions v
         WHERE ($4::uuid IS NULL OR v.file_id = $4::uuid)
           AND (v.file_id IN (SELECT file_id FROM file_versions GROUP BY file_id HAVING count(*) > $1)
            OR ($2::float8 IS NOT NULL AND v.file_id IN (
              SELECT file_id FROM file_versions WHERE created_at < now() - make_interval(secs => $2::float8))))
       ) v JOIN files f ON f.id = v.file_id
       WHERE v.version <> f.version
         AND (v.rank > $1 OR ($2::float8 IS NOT NULL AND v.created_at < now() - make_interval(secs => $2::float8)))
       ORDER BY v.created_at, v.file_id, v.version LIMIT $3`,
      [keep, maxAgeMs === undefined ? null : maxAgeMs / 1000, limit, fileId ?? null],
    );
    return rows.map(toVersion);
  }

  /** The distinct objects of a file's versions (to remove with the file). */
  async objectsOf(fileId: string): Promise<FileVersion[]> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT DISTINCT ON (object_id) ${COLUMNS} FROM file_versions WHERE file_id = $1 ORDER BY object_id, version`,
      [fileId],
    );
    return rows.map(toVersion);
  }

  /** Marks the versions whose object failed an integrity check corrupt; true when one was stored. */
  async markCorrupt(fileId: string, objectId: string): Promise<boolean> {
    const [rows]: [Row[], number] = await this.dataSource.query(
      `UPDATE file_versions SET status = 'corrupt' WHERE file_id = $1 AND object_id = $2 AND status = 'stored'
       RETURNING version`,
      [fileId, objectId],
    );
    return rows.length > 0;
  }

  /** Re-wrapped data key of an object (master key rotation): every version row that shares it. */
  async updateKey(objectId: string, keyRef: string, wrappedKey: Buffer | null): Promise<void> {
    await this.dataSource.query(
      'UPDATE file_versions SET key_ref = $2, wrapped_key = $3 WHERE object_id = $1',
      [objectId, keyRef, wrappedKey],
    );
  }

  /** Objects with a wrapped key that are not some file's own id, after `afterId` (master key rotation). */
  async listWrappedObjects(
    afterId: string,
    limit: number,
  ): Promise<Array<{ objectId: string; keyRef: string; wrappedKey: Buffer }>> {
    const rows: Array<{ object_id: string; key_ref: string; wrapped_key: Buffer }> =
      await this.dataSource.query(
        `SELECT DISTINCT ON (object_id) object_id, key_ref, wrapped_key FROM file_versions
       WHERE wrapped_key IS NOT NULL AND object_id <> file_id AND object_id > $1
       ORDER BY object_id LIMIT $2`,
        [afterId, limit],
      );
    return rows.map((r) => ({ objectId: r.object_id, keyRef: r.key_ref, wrappedKey: r.wrapped_key }));
  }

  private static async nextNumber(m: EntityManager, fileId: string): Promise<number> {
    const [{ next }]: Array<{ next: number }> = await m.query(
      'SELECT coalesce(max(version), 0) + 1 AS next FROM file_versions WHERE file_id = $1',
      [fileId],
    );
    return Number(next);
  }

  /** Copies version `version`'s facts onto the file's row: it is now what the file's API and links serve. */
  private static async makeCurrent(m: EntityManager, fileId: string, version: number): Promise<void> {
    await m.query(
      `UPDATE files f SET ${CURRENT_FROM_V}, version_count = (SELECT count(*) FROM file_versions WHERE file_id = f.id)
       FROM file_versions v WHERE f.id = $1 AND v.file_id = $1 AND v.version = $2`,
      [fileId, version],
    );
  }

  /** Locks the file row; refuses an upload row of a version or a file whose first version is not stored. */
  private async lockFile(m: EntityManager, fileId: string): Promise<VersionRefusal | null> {
    const [file]: Array<{ status: string; version_of: string | null }> = await m.query(
      'SELECT status, version_of FROM files WHERE id = $1 FOR UPDATE',
      [fileId],
    );
    if (!file || file.version_of) return 'no-file';
    if (file.status !== 'stored' && file.status !== 'corrupt') return 'not-stored';
    return null;
  }
}
