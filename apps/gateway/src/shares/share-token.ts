import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** 32 random bytes from the CSPRNG: 256 bits, far past guessing (the issue asks for >= 128). */
export const SHARE_TOKEN_BYTES = 32;
/** What a link token looks like: unpadded base64url of 32 bytes, 43 characters. */
export const SHARE_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function generateShareToken(): string {
  return randomBytes(SHARE_TOKEN_BYTES).toString('base64url');
}

/** SHA-256 hex of a link token: all the database holds. 256 random bits need no slow hash. */
export function hashShareToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Whether `token` hashes to `storedHash`, compared in constant time. The row was found by this hash
 * already (an index lookup, which leaks nothing usable: an attacker cannot steer a SHA-256 prefix);
 * this is the check that decides, and it must not leak how much of the hash matched.
 */
export function tokenMatches(token: string, storedHash: string): boolean {
  const actual = Buffer.from(hashShareToken(token), 'hex');
  const expected = Buffer.from(storedHash, 'hex');
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}

/** How long a correct password opens its link in that browser. */
export const UNLOCK_COOKIE_LIFETIME_MS = 30 * 60_000;

/** The cookie key, derived from SESSION_SECRET for this one purpose (a session cookie MAC never opens a link). */
export function unlockCookieKey(sessionSecret: string): Buffer {
  return createHmac('sha256', sessionSecret).update('tess share-link unlock cookie v1').digest();
}

function mac(key: Buffer, shareId: string, tokenHash: string, expiresAtMs: number): string {
  return createHmac('sha256', key).update(`${shareId}.${tokenHash}.${expiresAtMs}`).digest('base64url');
}

/**
 * The value of the cookie a correct password earns: `<expiry ms>.<HMAC over link id, token hash and
 * expiry>`. Bound to one link (another link's cookie, or this one altered or past its expiry, opens
 * nothing) and short-lived; its path is the link's own, so the browser sends it to nothing else.
 */
export function signUnlockCookie(key: Buffer, shareId: string, tokenHash: string, now: Date): string {
  const expiresAtMs = now.getTime() + UNLOCK_COOKIE_LIFETIME_MS;
  return `${expiresAtMs}.${mac(key, shareId, tokenHash, expiresAtMs)}`;
}

export function unlockCookieValid(
  key: Buffer,
  value: string,
  shareId: string,
  tokenHash: string,
  now: Date,
): boolean {
  const m = /^(\d{13,16})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!m) return false;
  const expiresAtMs = Number(m[1]);
  if (!(expiresAtMs > now.getTime())) return false;
  const expected = Buffer.from(mac(key, shareId, tokenHash, expiresAtMs));
  const given = Buffer.from(m[2]!);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Every value of the cookie `name` in a Cookie header (one per matching path may be sent). */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (!header) return [];
  const out: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) out.push(part.slice(eq + 1).trim());
  }
  return out;
}
