import { describe, expect, it } from 'vitest';
import { generateToken, hashToken } from './tokens.service.js';

describe('API tokens', () => {
  it('carry 256 random bits behind a recognizable prefix', () => {
    const token = generateToken();
    expect(token).toMatch(/^tess_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.slice(5), 'base64url')).toHaveLength(32);
    expect(new Set(Array.from({ length: 100 }, generateToken)).size).toBe(100);
  });

  it('are stored as their SHA-256, never as themselves', () => {
    const token = generateToken();
    const hash = hashToken(token);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(token.slice(5));
    expect(hashToken(token)).toBe(hash);
    expect(hashToken(generateToken())).not.toBe(hash);
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
