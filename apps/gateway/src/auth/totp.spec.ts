import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeyProvider, type EnvelopeKeyProvider } from '#common';
import {
  hashRecoveryCode,
  newRecoveryCodes,
  normalizeRecoveryCode,
  openTotpSecret,
  sealTotpSecret,
  totpProvisioning,
  totpTimeStep,
} from './totp.js';

/** RFC 6238 appendix B's SHA-1 seed, "12345678901234567890", in base32. */
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('TOTP (RFC 6238, 30 s, 6 digits, SHA-1)', () => {
  // Appendix B's SHA-1 rows; a 6-digit code is the last six digits of the 8-digit one.
  it.each([
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ])('accepts the RFC 6238 test vector at T=%i', async (epochSeconds, eight) => {
    expect(await totpTimeStep(RFC_SECRET, eight.slice(2), { epochSeconds })).toBe(
      Math.floor(epochSeconds / 30),
    );
    expect(
      await totpTimeStep(
        RFC_SECRET,
        eight.slice(2).replace(/^./, (d) => String((+d + 1) % 10)),
        { epochSeconds },
      ),
    ).toBeNull();
  });

  it('accepts a code one step either side of its own and nothing further (window edges)', async () => {
    const step = 40_000_000;
    const code = await generate({ secret: RFC_SECRET, epoch: step * 30 });
    const at = (s: number, offset = 0) => totpTimeStep(RFC_SECRET, code, { epochSeconds: s * 30 + offset });
    expect(await at(step)).toBe(step);
    expect(await at(step - 1)).toBe(step); // the client's clock runs ahead by up to a step
    expect(await at(step + 1, 29)).toBe(step); // ... or behind, to the last second of the next step
    expect(await at(step - 2, 29)).toBeNull();
    expect(await at(step + 2)).toBeNull();
  });

  it('refuses a code for a time step not later than the last one accepted (replay)', async () => {
    const step = 40_000_100;
    const epochSeconds = step * 30 + 3;
    const code = await generate({ secret: RFC_SECRET, epoch: epochSeconds });
    expect(await totpTimeStep(RFC_SECRET, code, { epochSeconds, afterTimeStep: step - 1 })).toBe(step);
    expect(await totpTimeStep(RFC_SECRET, code, { epochSeconds, afterTimeStep: step })).toBeNull();
    const next = await generate({ secret: RFC_SECRET, epoch: epochSeconds + 30 });
    expect(await totpTimeStep(RFC_SECRET, next, { epochSeconds, afterTimeStep: step })).toBe(step + 1);
  });

  it('refuses malformed codes without asking the library', async () => {
    for (const code of ['', '12345', '1234567', 'abcdef', '12 345']) {
      expect(await totpTimeStep(RFC_SECRET, code)).toBeNull();
    }
  });

  it('renders the provisioning URI as an SVG QR code data URL', async () => {
    const { uri, qrDataUrl } = await totpProvisioning(RFC_SECRET, 'TESS (tess.test)', 'alice');
    expect(uri).toMatch(/^otpauth:\/\/totp\/.*alice\?.*secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ/);
    expect(qrDataUrl.startsWith('data:image/svg+xml;base64,')).toBe(true);
    expect(Buffer.from(qrDataUrl.split(',')[1]!, 'base64').toString('utf8')).toMatch(/^<svg /);
  });
});

describe('TOTP secret sealing', () => {
  let dir: string;
  let keys: EnvelopeKeyProvider;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tess-totp-'));
    keys = createKeyProvider({ provider: 'local', masterKeyFile: join(dir, 'master.key'), mode: 'envelope' });
  });
  afterAll(async () => {
    await keys.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores no plaintext, opens for its user only, and refuses tampering', async () => {
    const userId = '5b0c6f0e-8a0d-4c1e-9d5e-2f7b3a9c1d00';
    const sealed = await sealTotpSecret(keys, userId, RFC_SECRET);
    expect(sealed.secretCiphertext.includes(Buffer.from(RFC_SECRET))).toBe(false);
    expect(sealed.keyRef).toMatch(/^local:/);
    expect(await openTotpSecret(keys, userId, sealed)).toBe(RFC_SECRET);
    await expect(openTotpSecret(keys, '5b0c6f0e-8a0d-4c1e-9d5e-2f7b3a9c1d01', sealed)).rejects.toThrow();
    const flipped = Buffer.from(sealed.secretCiphertext);
    flipped[14]! ^= 1;
    await expect(openTotpSecret(keys, userId, { ...sealed, secretCiphertext: flipped })).rejects.toThrow();
  });
});

describe('recovery codes', () => {
  it('makes ten distinct 80-bit codes whose hash ignores case, spaces and dashes', () => {
    const codes = newRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[0-9a-f]{4}(-[0-9a-f]{4}){4}$/);
    const code = codes[0]!;
    expect(hashRecoveryCode(` ${code.toUpperCase().replace(/-/g, ' ')} `)).toBe(hashRecoveryCode(code));
    expect(normalizeRecoveryCode('123456')).toBeNull();
  });
});
