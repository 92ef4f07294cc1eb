import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The lost-job reconciler's index: it looks only at files `queued` or `processing` whose row has not
 * changed for a grace period, so a pass costs O(such rows), not O(all files). Replaces the status-only
 * partial index of the initial schema (same rows, now ordered by updated_at).
 */
export class Reliability1764500000000 implements MigrationInterface {
  name = 'Reliability1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX files_status_updated_idx ON files (status, updated_at) WHERE status IN ('queued', 'processing')`,
    );
    await q.query('DROP INDEX files_status_idx');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX files_status_idx ON files (status) WHERE status IN ('queued', 'processing')`);
    await q.query('DROP INDEX files_status_updated_idx');
  }
}
