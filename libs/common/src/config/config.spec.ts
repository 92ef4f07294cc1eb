import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';
import { DEV_SESSION_SECRET } from './config.schema.js';

const MiB = 1024 * 1024;
/** What `openssl rand -base64 48` prints (a fixed sample). */
const STRONG_SECRET = 'q3X9v0bK2mR7tYp4LwZ8sNf1HcJ6dGe5aUiOxQkVbT0rMnPy';

function problems(env: Record<string, string>): string {
  try {
    loadConfig(env, '/srv/tess');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}

describe('loadConfig', () => {
  it('runs on embedded defaults: local store, local key file, local Postgres and Redis', () => {
    const config = loadConfig({}, '/srv/tess');
    expect(config.http.port).toBe(3000);
    expect(config.database.url).toBe('postgres://postgres@127.0.0.1:5432/tess');
    expect(config.redis.url).toBe('redis://127.0.0.1:6379');
    // Object keys are `objects/<fileId>`, so local objects live under DATA_DIR/objects.
    expect(config.storage).toEqual({ driver: 'local', root: '/srv/tess/.data' });
    expect(config.tempDir).toBe('/srv/tess/.data/tmp');
    expect(config.keys.masterKeyFile).toBe('/srv/tess/.data/master.key');
    expect(config.keys).toMatchObject({ provider: 'local', mode: 'envelope' });
    expect(config.uploads.maxFileSize).toBe(500 * MiB);
    expect(config.worker.concurrency).toBe(2);
    expect(config.session.cookieSecure).toBe(false);
    expect(config.http.allowedOrigins).toEqual(['http://127.0.0.1:3000']);
  });

  it('opens registration and asks admins for no second factor on the embedded defaults; production does', () => {
    const config = loadConfig({}, '/srv/tess');
    expect(config.registration).toEqual({ mode: 'open', inviteExpiryMs: 7 * 86_400_000 });
    expect(config.admin).toEqual({ usernames: [], mfaRequired: false });
    const production = loadConfig({ NODE_ENV: 'production', SESSION_SECRET: STRONG_SECRET }, '/srv/tess');
    expect(production.admin.mfaRequired).toBe(true);
    const set = loadConfig({ REGISTRATION: 'invite', INVITE_EXPIRY: '2d', ADMIN_USERNAMES: ' alice, bob ,' });
    expect(set.registration).toEqual({ mode: 'invite', inviteExpiryMs: 2 * 86_400_000 });
    expect(set.admin.usernames).toEqual(['alice', 'bob']);
    expect(problems({ REGISTRATION: 'sometimes' })).toMatch(/REGISTRATION/);
    expect(problems({ ADMIN_USERNAMES: 'alice,not a name' })).toMatch(
      /ADMIN_USERNAMES must be a comma-separated/,
    );
  });

  it('parses sizes and durations with units', () => {
    const config = loadConfig({ MAX_FILE_SIZE: '1GiB', S3_PART_SIZE: '8 MiB', SESSION_IDLE_TIMEOUT: '45m' });
    expect(config.uploads.maxFileSize).toBe(1024 * MiB);
    expect(config.session.idleTimeoutMs).toBe(45 * 60_000);
    expect(loadConfig({ MAX_FILE_SIZE: '1234' }).uploads.maxFileSize).toBe(1234);
  });

  it('leaves two-factor sign-in optional unless MFA_REQUIRED is true, and refuses other spellings', () => {
    expect(loadConfig({}).mfa.required).toBe(false);
    expect(loadConfig({ MFA_REQUIRED: 'true' }).mfa.required).toBe(true);
    expect(loadConfig({ MFA_REQUIRED: 'false' }).mfa.required).toBe(false);
    expect(problems({ MFA_REQUIRED: 'always' })).toContain('MFA_REQUIRED');
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ S3_ENDPOINT: '', PORT: '' }).http.port).toBe(3000);
  });

  it('names every bad variable with an actionable message', () => {
    const message = problems({
      PORT: 'eighty',
      MAX_FILE_SIZE: 'lots',
      DATABASE_URL: 'mysql://x',
      STORAGE_DRIVER: 'ftp',
    });
    expect(message).toContain('PORT');
    expect(message).toContain('MAX_FILE_SIZE must be a byte count such as 524288000 or 500MiB (got "lots")');
    expect(message).toContain('DATABASE_URL must be a URL starting with postgres:// or postgresql://');
    expect(message).toContain('STORAGE_DRIVER');
    expect(message).toContain('.env.example');
  });

  it('never echoes secret values in errors', () => {
    const message = problems({ SESSION_SECRET: 'short-secret' });
    expect(message).toContain('SESSION_SECRET must be at least 32 characters');
    expect(message).not.toContain('short-secret');
  });

  it('requires a bucket for the s3 driver and AWS for per-file secrets', () => {
    expect(problems({ STORAGE_DRIVER: 's3' })).toContain('S3_BUCKET is required when STORAGE_DRIVER=s3');
    expect(problems({ KEY_MODE: 'per-file-secret' })).toContain(
      'per-file-secret needs KEY_PROVIDER=aws-secrets-manager',
    );
    const s3 = loadConfig({ STORAGE_DRIVER: 's3', S3_BUCKET: 'tess', S3_ENDPOINT: 'http://127.0.0.1:9000' });
    expect(s3.storage).toMatchObject({
      driver: 's3',
      bucket: 'tess',
      partSize: 8 * MiB,
      forcePathStyle: false,
    });
  });

  it('refuses S3 parts below the 5 MiB minimum', () => {
    expect(problems({ S3_PART_SIZE: '1MiB' })).toContain('S3_PART_SIZE must be at least 5MiB');
  });

  it('refuses to run production with the default session secret or insecure cookies', () => {
    expect(problems({ NODE_ENV: 'production' })).toContain(
      'SESSION_SECRET must be set to a random value in production',
    );
    expect(
      problems({ NODE_ENV: 'production', SESSION_SECRET: STRONG_SECRET, COOKIE_SECURE: 'false' }),
    ).toContain('COOKIE_SECURE cannot be false in production');
    const prod = loadConfig({ NODE_ENV: 'production', SESSION_SECRET: STRONG_SECRET });
    expect(prod.session.cookieSecure).toBe(true);
    expect(prod.session.secret).not.toBe(DEV_SESSION_SECRET);
  });

  it('turns password reset on with SMTP_URL only, never printing it, and needs PUBLIC_URL in production', () => {
    expect(loadConfig({}).mail.smtpUrl).toBeNull();
    const config = loadConfig({ SMTP_URL: 'smtps://tess:s3cret@mail.example.test:465' });
    expect(config.mail).toEqual({
      smtpUrl: 'smtps://tess:s3cret@mail.example.test:465',
      from: 'TESS <no-reply@127.0.0.1>',
    });
    expect(config.passwordReset).toEqual({ maxPerAddress: 3, maxPerIp: 10, windowMs: 3_600_000 });
    const wrong = problems({ SMTP_URL: 'http://user:s3cret@mail.example.test' });
    expect(wrong).toContain('SMTP_URL must be a URL starting with smtp:// or smtps://');
    expect(wrong).not.toContain('s3cret');
    const prod = {
      NODE_ENV: 'production',
      SESSION_SECRET: STRONG_SECRET,
      SMTP_URL: 'smtp://mail.example.test',
    };
    expect(problems(prod)).toContain('PUBLIC_URL is required in production when SMTP_URL is set');
    expect(loadConfig({ ...prod, PUBLIC_URL: 'https://files.example.test' }).mail.from).toBe(
      'TESS <no-reply@files.example.test>',
    );
  });

  it('refuses a long but low-entropy session secret in production, saying how to make one', () => {
    for (const secret of [
      'a'.repeat(32),
      'x'.repeat(48),
      'abababababababababababababababab',
      '0123456789abcde'.repeat(3),
    ]) {
      const message = problems({ NODE_ENV: 'production', SESSION_SECRET: secret });
      expect(message).toContain('SESSION_SECRET looks low-entropy');
      expect(message).toContain('openssl rand -base64 48');
      expect(message).not.toContain(secret);
    }
    expect(
      loadConfig({ NODE_ENV: 'production', SESSION_SECRET: '0123456789abcdef'.repeat(2) }).session.secret,
    ).toHaveLength(32);
    // Development and tests keep accepting any 32+ characters.
    expect(loadConfig({ SESSION_SECRET: 'a'.repeat(32) }).session.secret).toHaveLength(32);
  });

  it('refuses argon2 parameters below the OWASP minimum', () => {
    expect(problems({ ARGON2_MEMORY_KIB: '4096' })).toContain('ARGON2_MEMORY_KIB');
    expect(problems({ ARGON2_TIME_COST: '1' })).toContain('ARGON2_TIME_COST');
  });
});
