import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Passkeys (WebAuthn credentials) as a second factor (docs/security.md item 30a). One row per
 * credential: its id (base64url, unique over all users: an authenticator's credential belongs to one
 * account), the COSE public key, the signature counter (a counter that goes backwards marks a cloned
 * authenticator), the transports the browser reported (hints for the next sign-in), the owner's name
 * for it, and when it was added and last used. No secret is stored: the private key never leaves the
 * authenticator.
 */
export class Passkeys1765300000000 implements MigrationInterface {
  name = 'Passkeys1765300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE mfa_passkeys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        credential_id varchar(1400) NOT NULL,
        public_key bytea NOT NULL,
        counter bigint NOT NULL DEFAULT 0 CHECK (counter >= 0),
        transports varchar(200) NOT NULL DEFAULT '',
        name varchar(100) NOT NULL,
        device_type varchar(20) NOT NULL,
        backed_up boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz
      )`);
    await q.query('CREATE UNIQUE INDEX mfa_passkeys_credential_uq ON mfa_passkeys (credential_id)');
    await q.query('CREATE INDEX mfa_passkeys_user_idx ON mfa_passkeys (user_id, created_at)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE mfa_passkeys');
  }
}
