import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Optional API token expiry: NULL never expires (every token created before this migration). */
export class ApiTokenExpiry1764400000000 implements MigrationInterface {
  name = 'ApiTokenExpiry1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE api_tokens DROP COLUMN expires_at');
  }
}
