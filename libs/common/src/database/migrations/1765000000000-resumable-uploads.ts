import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Resumable (tus) uploads: a file row exists from the upload's creation in status `receiving`, with the
 * time its unfinished upload expires (indexed for the sweeper), and the SHA-256 the client declared for the
 * whole file, which the worker compares with the one it computes.
 */
export class ResumableUploads1765000000000 implements MigrationInterface {
  name = 'ResumableUploads1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE files
        DROP CONSTRAINT files_status_check,
        ADD CONSTRAINT files_status_check
          CHECK (status IN ('receiving', 'queued', 'processing', 'stored', 'failed', 'corrupt', 'rejected', 'infected')),
        ADD COLUMN upload_expires_at timestamptz,
        ADD COLUMN client_sha256 char(64),
        ADD COLUMN client_verified boolean,
        ADD CONSTRAINT files_receiving_expires CHECK (status <> 'receiving' OR upload_expires_at IS NOT NULL)`);
    await q.query(
      `CREATE INDEX files_receiving_expiry_idx ON files (upload_expires_at) WHERE status = 'receiving'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX files_receiving_expiry_idx');
    await q.query(`DELETE FROM files WHERE status = 'receiving'`);
    await q.query(`
      ALTER TABLE files
        DROP CONSTRAINT files_receiving_expires,
        DROP COLUMN client_verified,
        DROP COLUMN client_sha256,
        DROP COLUMN upload_expires_at,
        DROP CONSTRAINT files_status_check,
        ADD CONSTRAINT files_status_check
          CHECK (status IN ('queued', 'processing', 'stored', 'failed', 'corrupt', 'rejected', 'infected'))`);
  }
}
