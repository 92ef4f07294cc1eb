import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Content checks in the worker's pass: the type sniffed from the content (`detected_type`), a mismatch the
 * policy flagged without refusing (`type_warning`), the scanner that passed the file (`scanned_with`, the
 * clamd version and signature database; NULL when scanning is off), and two final statuses for refused
 * files: `rejected` (type policy) and `infected` (malware found). Existing rows keep NULL facts.
 */
export class ContentChecks1764900000000 implements MigrationInterface {
  name = 'ContentChecks1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE files
        ADD COLUMN detected_type varchar(255),
        ADD COLUMN type_warning text,
        ADD COLUMN scanned_with varchar(255)`);
    await q.query('ALTER TABLE files DROP CONSTRAINT files_status_check');
    await q.query(`
      ALTER TABLE files ADD CONSTRAINT files_status_check
        CHECK (status IN ('queued', 'processing', 'stored', 'failed', 'corrupt', 'rejected', 'infected'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    // Refused files have no object: removing their rows is what an older version would have kept anyway.
    await q.query(`DELETE FROM files WHERE status IN ('rejected', 'infected')`);
    await q.query('ALTER TABLE files DROP CONSTRAINT files_status_check');
    await q.query(`
      ALTER TABLE files ADD CONSTRAINT files_status_check
        CHECK (status IN ('queued', 'processing', 'stored', 'failed', 'corrupt'))`);
    await q.query(`
      ALTER TABLE files DROP COLUMN detected_type, DROP COLUMN type_warning, DROP COLUMN scanned_with`);
  }
}
