import { describe, expect, it } from 'vitest';
import { loadConfig, TessMetrics } from '#common';
import { PasswordService, passwordProblem } from './password.service.js';

describe('passwordProblem', () => {
  it('accepts 8 characters and long passphrases without composition rules', () => {
    expect(passwordProblem('abcdefgq')).toBeNull();
    expect(passwordProblem('all lowercase words are fine here')).toBeNull();
    expect(passwordProblem('é'.repeat(256))).toBeNull();
  });

  it('refuses short, over-long, common and username-equal passwords', () => {
    expect(passwordProblem('seven77')).toMatch(/at least 8/);
    expect(passwordProblem('x'.repeat(257))).toMatch(/at most 256/);
    expect(passwordProblem('Password123')).toMatch(/most common/);
    expect(passwordProblem('alice.smith', 'Alice.Smith')).toMatch(/username/);
  });

  it('counts characters, not UTF-16 code units', () => {
    expect(passwordProblem('🔐🔐🔐🔐🔐🔐🔐🔐')).toBeNull();
    expect(passwordProblem('🔐🔐🔐🔐')).toMatch(/at least 8/);
  });
});

describe('PasswordService', () => {
  const service = new PasswordService(loadConfig({}), new TessMetrics('gateway'));

  it('hashes with argon2id at the configured cost and verifies only the exact password', async () => {
    const hash = await service.hash('a long enough passphrase');
    expect(hash).toMatch(/^\$argon2id\$v=19\$/);
    expect(hash).toContain('m=19456');
    expect(hash).toContain('t=2');
    expect(hash).toContain('p=1');
    expect(await service.verify(hash, 'a long enough passphrase')).toBe(true);
    expect(await service.verify(hash, 'a long enough passphrasE')).toBe(false);
    expect(await service.verify('not a hash', 'x')).toBe(false);
  });

  it('asks for a rehash when the configured parameters rise', async () => {
    const hash = await service.hash('a long enough passphrase');
    expect(service.needsRehash(hash)).toBe(false);
    const stronger = new PasswordService(
      loadConfig({ ARGON2_MEMORY_KIB: '65536' }),
      new TessMetrics('gateway'),
    );
    expect(stronger.needsRehash(hash)).toBe(true);
  });
});
