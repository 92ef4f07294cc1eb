import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Multi-factor sign-in (docs/security.md item 30). `mfa_totp`: one TOTP factor per user, the secret
 * AES-256-GCM-encrypted under a data key that the key provider wraps (`key_ref`, `wrapped_key`: the same
 * envelope as a file's data key), never in plaintext; `activated_at` is null while the enrolment waits for
 * its first code; `last_time_step` is the last accepted RFC 6238 time step (a code is accepted once).
 * `mfa_recovery_codes`: the SHA-256 of each one-time recovery code (80 random bits each); regenerating
 * deletes the old set.
 */
export class Mfa1765100000000 implements MigrationInterface {
  name = 'Mfa1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE mfa_totp (
        user_id uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        key_ref varchar(300) NOT NULL,
        wrapped_key bytea NOT NULL,
        secret_ciphertext bytea NOT NULL,
        last_time_step bigint,
        created_at timestamptz NOT NULL DEFAULT now(),
        activated_at timestamptz
      )`);
    await q.query(`
      CREATE TABLE mfa_recovery_codes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        code_hash char(64) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        used_at timestamptz
      )`);
    await q.query(
      'CREATE UNIQUE INDEX mfa_recovery_codes_user_hash_uq ON mfa_recovery_codes (user_id, code_hash)',
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE mfa_recovery_codes');
    await q.query('DROP TABLE mfa_totp');
  }
}
