import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Share links (docs/security.md 31a-31l): one row per link, holding only the SHA-256 of its token, and
 * the download slots reserved by downloads in flight. A deleted file revokes its links first; the
 * foreign key then keeps the revoked row (file_id NULL) so its link answers 410, not 404.
 */
export class Shares1764600000000 implements MigrationInterface {
  name = 'Shares1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE shares (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        file_id uuid REFERENCES files(id) ON DELETE SET NULL,
        token_hash char(64) NOT NULL,
        password_hash text,
        note varchar(200),
        expires_at timestamptz NOT NULL,
        max_downloads int CHECK (max_downloads IS NULL OR max_downloads BETWEEN 1 AND 1000),
        downloads int NOT NULL DEFAULT 0 CHECK (downloads >= 0),
        last_download_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        CONSTRAINT shares_within_limit CHECK (max_downloads IS NULL OR downloads <= max_downloads)
      )`);
    await q.query('CREATE UNIQUE INDEX shares_token_hash_uq ON shares (token_hash)');
    await q.query('CREATE INDEX shares_owner_created_idx ON shares (owner_id, created_at DESC, id DESC)');
    await q.query('CREATE INDEX shares_file_idx ON shares (file_id)');
    await q.query(`
      CREATE TABLE share_download_leases (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        share_id uuid NOT NULL REFERENCES shares(id) ON DELETE CASCADE,
        expires_at timestamptz NOT NULL
      )`);
    await q.query('CREATE INDEX share_download_leases_share_idx ON share_download_leases (share_id)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE share_download_leases');
    await q.query('DROP TABLE shares');
  }
}
