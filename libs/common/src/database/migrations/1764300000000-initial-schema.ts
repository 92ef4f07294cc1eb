import type { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1764300000000 implements MigrationInterface {
  name = 'InitialSchema1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        username varchar(80) NOT NULL,
        email varchar(254) NOT NULL,
        password_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX users_username_lower_uq ON users (lower(username))`);
    await q.query(`
      CREATE TABLE files (
        id uuid PRIMARY KEY,
        owner_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        filename varchar(255) NOT NULL,
        content_type varchar(255) NOT NULL,
        size bigint NOT NULL CHECK (size >= 0),
        status varchar(16) NOT NULL
          CHECK (status IN ('queued', 'processing', 'stored', 'failed', 'corrupt')),
        sha1 char(40),
        sha256 char(64),
        encrypted_size bigint,
        storage_driver varchar(16),
        object_key varchar(512),
        key_ref varchar(1024),
        wrapped_key bytea,
        temp_path varchar(1024),
        error text,
        attempts int NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        processing_started_at timestamptz,
        stored_at timestamptz,
        finished_at timestamptz,
        CONSTRAINT files_stored_complete CHECK (
          status NOT IN ('stored', 'corrupt')
          OR (sha1 IS NOT NULL AND sha256 IS NOT NULL AND object_key IS NOT NULL AND key_ref IS NOT NULL)
        )
      )`);
    await q.query(`CREATE INDEX files_owner_created_idx ON files (owner_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX files_status_idx ON files (status) WHERE status IN ('queued', 'processing')`);
    await q.query(`
      CREATE TABLE api_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name varchar(100) NOT NULL,
        token_hash char(64) NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz
      )`);
    await q.query(`CREATE UNIQUE INDEX api_tokens_hash_uq ON api_tokens (token_hash)`);
    await q.query(`CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, created_at DESC)`);
    await q.query(`
      CREATE TABLE audit_events (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid REFERENCES users(id) ON DELETE SET NULL,
        action varchar(40) NOT NULL,
        file_id uuid,
        ip varchar(64),
        details jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX audit_events_user_created_idx ON audit_events (user_id, created_at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE audit_events');
    await q.query('DROP TABLE api_tokens');
    await q.query('DROP TABLE files');
    await q.query('DROP TABLE users');
  }
}
