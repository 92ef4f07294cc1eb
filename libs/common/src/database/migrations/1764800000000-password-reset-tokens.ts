import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Password reset by e-mail: one row per link sent, holding only the SHA-256 of its 256-bit token
 * (docs/security.md item 11b). A link is single-use (`used_at`) and expires (`expires_at`, 30 minutes);
 * every outstanding link of a user is marked used when the password changes by any route. The index on
 * lower(email) serves the reset form's lookup.
 */
export class PasswordResetTokens1764800000000 implements MigrationInterface {
  name = 'PasswordResetTokens1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE password_reset_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        token_hash char(64) NOT NULL,
        ip varchar(64),
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        CONSTRAINT password_reset_tokens_expiry CHECK (expires_at > created_at)
      )`);
    await q.query('CREATE UNIQUE INDEX password_reset_tokens_hash_uq ON password_reset_tokens (token_hash)');
    await q.query(
      'CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id) WHERE used_at IS NULL',
    );
    await q.query('CREATE INDEX users_email_lower_idx ON users (lower(email))');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX users_email_lower_idx');
    await q.query('DROP TABLE password_reset_tokens');
  }
}
