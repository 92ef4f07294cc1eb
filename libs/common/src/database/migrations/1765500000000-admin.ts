import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Operators (docs/security.md item 37). `users.role` (`user` | `admin`); `users.status` (`active`,
 * `disabled`: no session, token or socket works; `deleting`: disabled while the delete-user job removes
 * the files and then the row); per-user quota overrides (NULL: QUOTA_BYTES / QUOTA_FILES apply, 0: no
 * limit); `last_login_at` for the admin's user list. `invites`: single-use, expiring registration links
 * (the SHA-256 of a 256-bit token, optionally bound to an e-mail address). An index on
 * `audit_events.created_at` serves the admin's search across every user's events.
 */
export class Admin1765500000000 implements MigrationInterface {
  name = 'Admin1765500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE users
        ADD COLUMN role varchar(16) NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
        ADD COLUMN status varchar(16) NOT NULL DEFAULT 'active'
          CHECK (status IN ('active', 'disabled', 'deleting')),
        ADD COLUMN quota_bytes bigint CHECK (quota_bytes >= 0),
        ADD COLUMN quota_files integer CHECK (quota_files >= 0),
        ADD COLUMN last_login_at timestamptz`);
    await q.query(`
      CREATE TABLE invites (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        token_hash char(64) NOT NULL,
        email varchar(254),
        created_by uuid REFERENCES users(id) ON DELETE SET NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        used_by uuid REFERENCES users(id) ON DELETE SET NULL,
        revoked_at timestamptz
      )`);
    await q.query('CREATE UNIQUE INDEX invites_token_hash_uq ON invites (token_hash)');
    await q.query('CREATE INDEX invites_created_idx ON invites (created_at DESC)');
    await q.query('CREATE INDEX audit_events_created_idx ON audit_events (created_at DESC, id DESC)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX audit_events_created_idx');
    await q.query('DROP TABLE invites');
    await q.query(
      'ALTER TABLE users DROP COLUMN last_login_at, DROP COLUMN quota_files, DROP COLUMN quota_bytes, DROP COLUMN status, DROP COLUMN role',
    );
  }
}
