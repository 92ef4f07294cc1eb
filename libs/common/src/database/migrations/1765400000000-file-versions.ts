import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * File versions (docs/architecture.md, "File versions"). A `files` row stays the file's stable identity (the
 * id the API, share links and audit events name) and carries its *current* version's facts, so every reader
 * of a file is unchanged. Each stored version is a `file_versions` row with its own encrypted object, data
 * key, hashes, size, uploader and time; `object_id` is the id that object and key were made under (the
 * header's file id, `objects/<object_id>`): the file's own id for version 1, the id of the upload that
 * brought a later version, and shared by a restored copy (which reuses the object and wrapped key).
 *
 * A new version is uploaded as a `files` row of its own with `version_of` set: the pipeline (job id = that
 * row's id, staging, content checks, reconciler) runs on it as on any upload; its commit moves its facts
 * into the file and deletes it, in one transaction, so until then the previous version stays current and a
 * failed, rejected or infected one leaves the file as it was. `files.object_id` is the current object's id
 * (null: the file's own id); `version` and `version_count` are kept by the same transactions.
 */
export class FileVersions1765400000000 implements MigrationInterface {
  name = 'FileVersions1765400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE files
        ADD COLUMN version integer NOT NULL DEFAULT 1,
        ADD COLUMN version_count integer NOT NULL DEFAULT 0,
        ADD COLUMN object_id uuid,
        ADD COLUMN version_of uuid REFERENCES files(id) ON DELETE CASCADE,
        ADD CONSTRAINT files_version_positive CHECK (version >= 1 AND version_count >= 0)`);
    await q.query('CREATE INDEX files_version_of_idx ON files (version_of) WHERE version_of IS NOT NULL');
    await q.query(`
      CREATE TABLE file_versions (
        file_id uuid NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        version integer NOT NULL CHECK (version >= 1),
        object_id uuid NOT NULL,
        owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        uploaded_by uuid REFERENCES users(id) ON DELETE SET NULL,
        status varchar(16) NOT NULL DEFAULT 'stored' CHECK (status IN ('stored', 'corrupt')),
        content_type varchar(255) NOT NULL,
        size bigint NOT NULL,
        sha1 char(40) NOT NULL,
        sha256 char(64) NOT NULL,
        detected_type varchar(255),
        type_warning text,
        scanned_with varchar(255),
        client_sha256 char(64),
        client_verified boolean,
        encrypted_size bigint NOT NULL,
        storage_driver varchar(16) NOT NULL,
        object_key varchar(512) NOT NULL,
        key_ref varchar(1024) NOT NULL,
        wrapped_key bytea,
        restored_from integer,
        created_at timestamptz NOT NULL DEFAULT now(),
        stored_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (file_id, version)
      )`);
    await q.query('CREATE INDEX file_versions_object_idx ON file_versions (object_id)');
    await q.query('CREATE INDEX file_versions_owner_idx ON file_versions (owner_id)');
    await q.query('CREATE INDEX file_versions_created_idx ON file_versions (created_at)');
    // Every file stored so far is its own version 1.
    await q.query(`
      INSERT INTO file_versions (file_id, version, object_id, owner_id, uploaded_by, status, content_type, size,
        sha1, sha256, detected_type, type_warning, scanned_with, client_sha256, client_verified, encrypted_size,
        storage_driver, object_key, key_ref, wrapped_key, created_at, stored_at)
      SELECT id, 1, id, owner_id, owner_id, status, content_type, size, sha1, sha256, detected_type,
        type_warning, scanned_with, client_sha256, client_verified, encrypted_size, storage_driver, object_key,
        key_ref, wrapped_key, created_at, coalesce(stored_at, updated_at)
      FROM files
      WHERE status IN ('stored', 'corrupt') AND object_key IS NOT NULL AND key_ref IS NOT NULL
        AND sha1 IS NOT NULL AND sha256 IS NOT NULL AND encrypted_size IS NOT NULL AND storage_driver IS NOT NULL`);
    await q.query('UPDATE files SET version_count = 1 WHERE id IN (SELECT file_id FROM file_versions)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE file_versions');
    await q.query('DELETE FROM files WHERE version_of IS NOT NULL');
    await q.query('DROP INDEX files_version_of_idx');
    await q.query(`
      ALTER TABLE files
        DROP CONSTRAINT files_version_positive,
        DROP COLUMN version_of,
        DROP COLUMN object_id,
        DROP COLUMN version_count,
        DROP COLUMN version`);
  }
}
