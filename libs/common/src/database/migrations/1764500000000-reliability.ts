import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * - The lost-job reconciler's index: it looks only at files `queued` or `processing` whose row has not
 *   changed for a grace period, so a pass costs O(such rows), not O(all files). Replaces the status-only
 *   partial index of the initial schema (same rows, now ordered by updated_at).
 * - The audit chain (libs/common/src/audit): per event its chain, position, previous hash, own hash and
 *   the audit key it was linked with; one head row per chain. Events recorded before this migration form
 *   the `legacy` chain: numbered in time order and counted in its head, but not linked (their content was
 *   never authenticated). created_at is kept to milliseconds from here on (the canonical content's time).
 */
export class Reliability1764500000000 implements MigrationInterface {
  name = 'Reliability1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX files_status_updated_idx ON files (status, updated_at) WHERE status IN ('queued', 'processing')`,
    );
    await q.query('DROP INDEX files_status_idx');
    await q.query(`
      ALTER TABLE audit_events
        ADD COLUMN chain varchar(80), ADD COLUMN seq bigint, ADD COLUMN prev_hash bytea,
        ADD COLUMN hash bytea, ADD COLUMN key_ref varchar(1024)`);
    await q.query(`
      UPDATE audit_events e SET chain = 'legacy', seq = n.rn
      FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS rn FROM audit_events) n
      WHERE e.id = n.id`);
    await q.query('ALTER TABLE audit_events ALTER COLUMN chain SET NOT NULL, ALTER COLUMN seq SET NOT NULL');
    await q.query('CREATE UNIQUE INDEX audit_events_chain_seq_uq ON audit_events (chain, seq)');
    await q.query(`
      CREATE TABLE audit_chain_heads (
        chain varchar(80) PRIMARY KEY,
        seq bigint NOT NULL,
        hash bytea,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(
      "INSERT INTO audit_chain_heads (chain, seq) SELECT 'legacy', count(*) FROM audit_events HAVING count(*) > 0",
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE audit_chain_heads');
    await q.query('DROP INDEX audit_events_chain_seq_uq');
    await q.query(
      'ALTER TABLE audit_events DROP COLUMN chain, DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash, DROP COLUMN key_ref',
    );
    await q.query(`CREATE INDEX files_status_idx ON files (status) WHERE status IN ('queued', 'processing')`);
    await q.query('DROP INDEX files_status_updated_idx');
  }
}
