import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Stands for "no parent" (the root) in the name-uniqueness indexes, where NULLs would never collide. */
const ROOT = "'00000000-0000-0000-0000-000000000000'::uuid";

/**
 * Folders and file management (issue 18). `folders`: each user's tree (`parent_id` null = the root); a
 * file lives in `files.folder_id` (null = the root). Names are unique per folder case-insensitively, for
 * folders among folders and files among files (`folders_name_uq`, `files_name_uq`); rows that already
 * share a name in the root are renamed first, keeping the first and adding ` (<8 characters of the id>)`
 * before the extension of the others. One btree index per listing order (name, size, created), in a
 * folder and across all of a user's folders, tie-broken on id for keyset paging, and a pg_trgm GIN index
 * on the lower-cased name for substring search (pg_trgm ships with PostgreSQL's contrib and is a trusted
 * extension: the database owner may create it).
 */
export class Folders1765450000000 implements MigrationInterface {
  name = 'Folders1765450000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('CREATE EXTENSION IF NOT EXISTS pg_trgm');
    await q.query(`
      CREATE TABLE folders (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        parent_id uuid REFERENCES folders(id),
        name varchar(255) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT folders_not_own_parent CHECK (parent_id IS NULL OR parent_id <> id)
      )`);
    await q.query(
      `CREATE UNIQUE INDEX folders_name_uq ON folders (owner_id, coalesce(parent_id, ${ROOT}), lower(name))`,
    );
    await q.query('CREATE INDEX folders_parent_idx ON folders (parent_id)');
    await q.query('ALTER TABLE files ADD COLUMN folder_id uuid REFERENCES folders(id)');
    await q.query(`
      UPDATE files f SET filename = CASE
          WHEN f.filename ~ '^.+\\.[^.]{1,16}$'
            THEN left(substring(f.filename FROM '^(.+)\\.[^.]{1,16}$'), 230) || ' (' || left(f.id::text, 8) || ').'
              || substring(f.filename FROM '\\.([^.]{1,16})$')
          ELSE left(f.filename, 240) || ' (' || left(f.id::text, 8) || ')'
        END
        FROM (SELECT id, row_number() OVER (PARTITION BY owner_id, lower(filename) ORDER BY created_at, id) AS n
              FROM files WHERE version_of IS NULL) d
        WHERE f.id = d.id AND d.n > 1`);
    await q.query(
      // The upload rows of new versions (file-versions migration) carry their file's name: not in the namespace.
      `CREATE UNIQUE INDEX files_name_uq ON files (owner_id, coalesce(folder_id, ${ROOT}), lower(filename))
         WHERE version_of IS NULL`,
    );
    await q.query('CREATE INDEX files_folder_created_idx ON files (owner_id, folder_id, created_at, id)');
    await q.query('CREATE INDEX files_folder_name_idx ON files (owner_id, folder_id, lower(filename), id)');
    await q.query('CREATE INDEX files_folder_size_idx ON files (owner_id, folder_id, size, id)');
    await q.query('CREATE INDEX files_owner_name_idx ON files (owner_id, lower(filename), id)');
    await q.query('CREATE INDEX files_owner_size_idx ON files (owner_id, size, id)');
    await q.query('CREATE INDEX files_filename_trgm_idx ON files USING gin (lower(filename) gin_trgm_ops)');
  }

  async down(q: QueryRunner): Promise<void> {
    for (const index of [
      'files_filename_trgm_idx',
      'files_owner_size_idx',
      'files_owner_name_idx',
      'files_folder_size_idx',
      'files_folder_name_idx',
      'files_folder_created_idx',
      'files_name_uq',
    ]) {
      await q.query(`DROP INDEX ${index}`);
    }
    // Files move back to the one list they had before folders; the extension may serve others, so it stays.
    await q.query('ALTER TABLE files DROP COLUMN folder_id');
    await q.query('DROP TABLE folders');
  }
}
