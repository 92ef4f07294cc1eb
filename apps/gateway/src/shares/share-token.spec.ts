import { describe, expect, it } from 'vitest';
import {
  cookieValues,
  generateShareToken,
  hashShareToken,
  SHARE_TOKEN_PATTERN,
  signUnlockCookie,
  tokenMatches,
  UNLOCK_COOKIE_LIFETIME_MS,
  unlockCookieKey,
  unlockCookieValid,
} from './share-token.js';

const A = '00000000-0000-4000-8000-0000000000a1';
const B = '00000000-0000-4000-8000-0000000000b2';

describe('share link tokens', () => {
  it('are 43 base64url characters (256 bits) from the CSPRNG, never repeating', () => {
    const tokens = Array.from({ length: 2000 }, generateShareToken);
    for (const t of tokens) {
      expect(t).toMatch(SHARE_TOKEN_PATTERN);
      expect(Buffer.from(t, 'base64url')).toHaveLength(32);
    }
    expect(new Set(tokens).size).toBe(tokens.length);
    // Every one of the 64 characters shows up: the whole alphabet is used, not a hex subset.
    expect(new Set(tokens.join('')).size).toBe(64);
  });

  it('are stored as their SHA-256 and compared in constant time against it', () => {
    const token = generateShareToken();
    const hash = hashShareToken(token);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(token);
    expect(tokenMatches(token, hash)).toBe(true);
    expect(tokenMatches(generateShareToken(), hash)).toBe(false);
    // One character off, a truncated or garbage stored hash: false, never a throw.
    expect(tokenMatches(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, hash)).toBe(false);
    expect(tokenMatches(token, hash.slice(0, 62))).toBe(false);
    expect(tokenMatches(token, 'zz')).toBe(false);
  });
});

describe('the unlock cookie', () => {
  const key = unlockCookieKey('x'.repeat(40));
  const now = new Date('2026-12-03T08:00:00Z');
  const hashA = hashShareToken(generateShareToken());
  const hashB = hashShareToken(generateShareToken());

  it('opens its own link until it expires', () => {
    const value = signUnlockCookie(key, A, hashA, now);
    expect(unlockCookieValid(key, value, A, hashA, now)).toBe(true);
    const late = new Date(now.getTime() + UNLOCK_COOKIE_LIFETIME_MS);
    expect(unlockCookieValid(key, value, A, hashA, late)).toBe(false);
  });

  it("does not open another link, nor a link re-created under another token, nor with another server's key", () => {
    const value = signUnlockCookie(key, A, hashA, now);
    expect(unlockCookieValid(key, value, B, hashA, now)).toBe(false);
    expect(unlockCookieValid(key, value, A, hashB, now)).toBe(false);
    expect(unlockCookieValid(unlockCookieKey('y'.repeat(40)), value, A, hashA, now)).toBe(false);
  });

  it('refuses an altered expiry or MAC and garbage', () => {
    const value = signUnlockCookie(key, A, hashA, now);
    const [exp, sig] = value.split('.') as [string, string];
    expect(unlockCookieValid(key, `${Number(exp) + 3_600_000}.${sig}`, A, hashA, now)).toBe(false);
    const flipped = `${exp}.${sig.startsWith('A') ? 'B' : 'A'}${sig.slice(1)}`;
    expect(unlockCookieValid(key, flipped, A, hashA, now)).toBe(false);
    for (const bad of ['', '.', 'abc', `${exp}.`, `${exp}.${sig}x`, `-1.${sig}`]) {
      expect(unlockCookieValid(key, bad, A, hashA, now)).toBe(false);
    }
  });

  it('is read from every cookie of that name in the header', () => {
    expect(cookieValues('a=1; tess.share=x; b=2; tess.share=y', 'tess.share')).toEqual(['x', 'y']);
    expect(cookieValues(undefined, 'tess.share')).toEqual([]);
    expect(cookieValues('tess.shared=1', 'tess.share')).toEqual([]);
  });
});
