import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { type ConfiguredKeyProvider, lazyModule, type SealedTotpSecret } from '#common';

/*
 * otplib and qrcode load on the first TOTP sign-in or enrolment, not with the gateway: only accounts
 * with a second factor ever need them, and together (qrcode brings pngjs) they cost an idle gateway
 * about 2 MiB of live V8 heap and 8 MiB of resident memory in a bare process (bench/footprint.mjs).
 */
const otplib = lazyModule<typeof import('otplib')>('otplib');
const qrcode = lazyModule<typeof import('qrcode')>('qrcode');

/*
 * TOTP after RFC 6238 as authenticator apps expect it: 30 s steps, 6 digits, HMAC-SHA-1, a 160-bit
 * secret (otplib's default). A code is accepted for its own step and one step either side (the window),
 * and only for a step later than the last one accepted (replay protection).
 */

export const TOTP_PERIOD_SECONDS = 30;
/** ±1 step: otplib's epochTolerance is in seconds. */
const WINDOW_SECONDS = TOTP_PERIOD_SECONDS;
export const TOTP_CODE = /^\d{6}$/;

/** A fresh base32 secret (20 random bytes). */
export function newTotpSecret(): string {
  return otplib().generateSecret();
}

/**
 * The time step a code is valid for (own step ±1), or null: wrong, malformed, or for a step not later
 * than `afterTimeStep` (already used).
 */
export async function totpTimeStep(
  secret: string,
  code: string,
  options: { afterTimeStep?: number | null; epochSeconds?: number } = {},
): Promise<number | null> {
  if (!TOTP_CODE.test(code)) return null;
  const result = await otplib().verify({
    secret,
    token: code,
    epochTolerance: WINDOW_SECONDS,
    ...(options.afterTimeStep != null ? { afterTimeStep: options.afterTimeStep } : {}),
    ...(options.epochSeconds !== undefined ? { epoch: options.epochSeconds } : {}),
  });
  // The functional verify's result type covers HOTP too; a TOTP success carries its time step.
  return result.valid && 'timeStep' in result ? result.timeStep : null;
}

/** The otpauth:// URI and its QR code as an SVG data URL (rendered here: no external service). */
export async function totpProvisioning(
  secret: string,
  issuer: string,
  label: string,
): Promise<{ uri: string; qrDataUrl: string }> {
  const uri = otplib().generateURI({ issuer, label, secret });
  const svg = await qrcode().toString(uri, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
  return { uri, qrDataUrl: `data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}` };
}

/*
 * Sealing: the secret is encrypted like a file: a data key from the key provider (envelope: wrapped by
 * the master key; per-file-secret: its own secret), AES-256-GCM with a fresh nonce, the AAD binding the
 * ciphertext to the user. The key provider's "file id" for it is `mfa-totp-<user id>`, which no file
 * id (a UUID) can equal.
 */
const SEAL_LABEL = 'tess.totp-secret.v1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

const keyId = (userId: string) => `mfa-totp-${userId}`;
const aad = (userId: string) => Buffer.from(`${SEAL_LABEL}|${userId}`, 'utf8');

export async function sealTotpSecret(
  keys: ConfiguredKeyProvider,
  userId: string,
  secret: string,
): Promise<SealedTotpSecret> {
  const { dataKey, keyRef, wrappedKey } = await keys.createDataKey(keyId(userId));
  try {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', dataKey, nonce);
    cipher.setAAD(aad(userId));
    const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return { keyRef, wrappedKey, secretCiphertext: Buffer.concat([nonce, body, cipher.getAuthTag()]) };
  } finally {
    dataKey.fill(0);
  }
}

export async function openTotpSecret(
  keys: ConfiguredKeyProvider,
  userId: string,
  sealed: SealedTotpSecret,
): Promise<string> {
  const dataKey = await keys.unwrapDataKey(keyId(userId), sealed);
  try {
    const c = sealed.secretCiphertext;
    const decipher = createDecipheriv('aes-256-gcm', dataKey, c.subarray(0, NONCE_BYTES));
    decipher.setAAD(aad(userId));
    decipher.setAuthTag(c.subarray(c.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(c.subarray(NONCE_BYTES, c.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } finally {
    dataKey.fill(0);
  }
}

/** Forgets the data key of a removed factor (per-file-secret: deletes its secret). */
export function destroyTotpKey(
  keys: ConfiguredKeyProvider,
  userId: string,
  sealed: SealedTotpSecret,
): Promise<void> {
  return keys.destroyDataKey(keyId(userId), sealed);
}

/*
 * Recovery codes: 80 random bits each, written as five groups of four hex digits. Stored as SHA-256: a
 * fast hash is enough for 80 random bits behind the sign-in throttle (as API tokens are hashed).
 */
export const RECOVERY_CODE_COUNT = 10;

export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () =>
    (randomBytes(10).toString('hex').match(/.{4}/g) ?? []).join('-'),
  );
}

/** The canonical form of a typed recovery code (case, spaces and dashes ignored), or null. */
export function normalizeRecoveryCode(input: string): string | null {
  const bare = input.replace(/[\s-]/g, '').toLowerCase();
  return /^[0-9a-f]{20}$/.test(bare) ? bare : null;
}

export function hashRecoveryCode(code: string): string {
  return createHash('sha256')
    .update(normalizeRecoveryCode(code) ?? code, 'utf8')
    .digest('hex');
}
