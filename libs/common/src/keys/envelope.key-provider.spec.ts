import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EnvelopeKeyProvider, WRAPPED_KEY_BYTES } from './envelope.key-provider.js';
import { KeyUnwrapError, type KeyUnwrapReason, type WrappedDataKey } from './key-provider.js';
import { LocalFileMasterKeySource } from './local-file.master-key-source.js';

async function unwrapError(
  provider: EnvelopeKeyProvider,
  fileId: string,
  wrapped: WrappedDataKey,
): Promise<KeyUnwrapError> {
  try {
    await provider.unwrapDataKey(fileId, wrapped);
  } catch (error) {
    if (error instanceof KeyUnwrapError) return error;
    throw error;
  }
  throw new Error('unwrapDataKey unexpectedly succeeded');
}

function flipped(buffer: Buffer, index: number): Buffer {
  const copy = Buffer.from(buffer);
  copy[index]! ^= 0x01;
  return copy;
}

describe('EnvelopeKeyProvider (local key file)', () => {
  let dir: string;
  let keyFile: string;
  let provider: EnvelopeKeyProvider;
  const fileA = randomUUID();
  const fileB = randomUUID();

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tess-envelope-'));
    keyFile = join(dir, 'master.key');
    provider = new EnvelopeKeyProvider(new LocalFileMasterKeySource({ path: keyFile }), 'local');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const expectReason = async (
    fileId: string,
    wrapped: WrappedDataKey,
    reason: KeyUnwrapReason,
  ): Promise<void> => {
    const error = await unwrapError(provider, fileId, wrapped);
    expect(error.reason).toBe(reason);
    expect(error.fileId).toBe(fileId);
  };

  it('round-trips a fresh 32-byte data key wrapped as nonce || ciphertext || tag', async () => {
    const created = await provider.createDataKey(fileA);

    expect(provider.mode).toBe('envelope');
    expect(created.dataKey).toHaveLength(32);
    expect(created.wrappedKey).toHaveLength(WRAPPED_KEY_BYTES);
    expect(WRAPPED_KEY_BYTES).toBe(12 + 32 + 16);
    expect(created.keyRef).toMatch(/^local:[0-9a-f-]{36}$/);
    expect(created.wrappedKey.includes(created.dataKey)).toBe(false);

    const unwrapped = await provider.unwrapDataKey(fileA, created);
    expect(unwrapped.equals(created.dataKey)).toBe(true);
  });

  it('gives every file its own data key and nonce', async () => {
    const one = await provider.createDataKey(fileA);
    const two = await provider.createDataKey(fileA);
    expect(one.dataKey.equals(two.dataKey)).toBe(false);
    expect(one.wrappedKey.subarray(0, 12).equals(two.wrappedKey.subarray(0, 12))).toBe(false);
    expect(one.keyRef).toBe(two.keyRef);
  });

  it('refuses the wrapped key of file A presented for file B', async () => {
    const a = await provider.createDataKey(fileA);
    await expectReason(fileB, a, 'authentication-failed');
    expect((await provider.unwrapDataKey(fileA, a)).equals(a.dataKey)).toBe(true);
  });

  it('refuses a tampered wrapped key: any flipped bit in nonce, ciphertext or tag', async () => {
    const created = await provider.createDataKey(fileA);
    for (const index of [0, 11, 12, 30, 43, 44, 59]) {
      await expectReason(
        fileA,
        { keyRef: created.keyRef, wrappedKey: flipped(created.wrappedKey, index) },
        'authentication-failed',
      );
    }
  });

  it('refuses a truncated or extended wrapped key as malformed', async () => {
    const created = await provider.createDataKey(fileA);
    await expectReason(
      fileA,
      { keyRef: created.keyRef, wrappedKey: created.wrappedKey.subarray(0, 59) },
      'malformed',
    );
    await expectReason(
      fileA,
      { keyRef: created.keyRef, wrappedKey: Buffer.concat([created.wrappedKey, Buffer.alloc(1)]) },
      'malformed',
    );
  });

  it('refuses a wrapped key whose keyRef was edited to name another existing version', async () => {
    const created = await provider.createDataKey(fileA);
    const { keyRef: newRef } = await provider.rotateMasterKey();
    await expectReason(fileA, { keyRef: newRef, wrappedKey: created.wrappedKey }, 'authentication-failed');
  });

  it('refuses a key reference of another provider or mode', async () => {
    const created = await provider.createDataKey(fileA);
    for (const keyRef of ['secret:tess/files/x', `aws-sm:s:${created.keyRef.slice(6)}`, '']) {
      await expectReason(fileA, { keyRef, wrappedKey: created.wrappedKey }, 'wrong-provider');
    }
  });

  it('refuses a wrapped key under a wrong master key (same version id, other key bytes)', async () => {
    const created = await provider.createDataKey(fileA);
    const ring = JSON.parse(await readFile(keyFile, 'utf8')) as { current: string };
    const otherFile = join(dir, 'other.key');
    await writeFile(
      otherFile,
      JSON.stringify({ current: ring.current, keys: { [ring.current]: randomBytes(32).toString('base64') } }),
      { mode: 0o600 },
    );
    const impostor = new EnvelopeKeyProvider(new LocalFileMasterKeySource({ path: otherFile }), 'local');

    const error = await unwrapError(impostor, fileA, created);
    expect(error.reason).toBe('authentication-failed');
    expect(error.message).toMatch(/wrong master key, tampered, or wrapped for another file/);
  });

  it('reports a master key version that does not exist as key-not-found', async () => {
    const created = await provider.createDataKey(fileA);
    const stranger = new EnvelopeKeyProvider(
      new LocalFileMasterKeySource({ path: join(dir, 'fresh.key') }),
      'local',
    );
    const error = await unwrapError(stranger, fileA, created);
    expect(error.reason).toBe('key-not-found');
  });

  it('keeps old wrapped keys readable after rotation and re-wraps them under the new version', async () => {
    const before = await provider.createDataKey(fileA);
    const { keyRef: newRef } = await provider.rotateMasterKey();
    expect(newRef).not.toBe(before.keyRef);
    expect(await provider.currentKeyRef()).toBe(newRef);

    expect((await provider.unwrapDataKey(fileA, before)).equals(before.dataKey)).toBe(true);
    const rewrapped = await provider.rewrap(fileA, before);
    expect(rewrapped.keyRef).toBe(newRef);
    expect(rewrapped.wrappedKey.equals(before.wrappedKey)).toBe(false);
    expect((await provider.unwrapDataKey(fileA, rewrapped)).equals(before.dataKey)).toBe(true);

    const after = await provider.createDataKey(fileB);
    expect(after.keyRef).toBe(newRef);
    expect(await provider.rewrap(fileB, after)).toBe(after);
  });

  it('rewrap verifies first: it will not launder a key wrapped for another file', async () => {
    const a = await provider.createDataKey(fileA);
    await provider.rotateMasterKey();
    await expect(provider.rewrap(fileB, a)).rejects.toMatchObject({ reason: 'authentication-failed' });
  });

  it('unwraps an old wrapped key restored from a backup only while its master key version exists', async () => {
    const old = await provider.createDataKey(fileA);
    await provider.rotateMasterKey();
    const current = await provider.rewrap(fileA, old);

    // A row restored from a backup taken before the rotation still carries the old wrap: it works...
    expect((await provider.unwrapDataKey(fileA, old)).equals(old.dataKey)).toBe(true);

    // ...until an operator prunes the old version from the keyring (after re-wrapping everything).
    const ring = JSON.parse(await readFile(keyFile, 'utf8')) as {
      current: string;
      keys: Record<string, string>;
    };
    const oldId = old.keyRef.slice('local:'.length);
    delete ring.keys[oldId];
    await writeFile(keyFile, JSON.stringify(ring), { mode: 0o600 });
    const restarted = new EnvelopeKeyProvider(new LocalFileMasterKeySource({ path: keyFile }), 'local');

    const error = await unwrapError(restarted, fileA, old);
    expect(error.reason).toBe('key-not-found');
    expect((await restarted.unwrapDataKey(fileA, current)).equals(old.dataKey)).toBe(true);
  });

  it('has nothing to record or destroy in envelope mode, and is ready once the key file is', async () => {
    const created = await provider.createDataKey(fileA);
    await provider.recordHashes(fileA, created, { sha1: 'a'.repeat(40), sha256: 'b'.repeat(64) });
    await provider.destroyDataKey(fileA, created);
    await provider.check();
    expect((await provider.unwrapDataKey(fileA, created)).equals(created.dataKey)).toBe(true);
  });

  it('never puts key material in error messages', async () => {
    const created = await provider.createDataKey(fileA);
    const error = await unwrapError(provider, fileB, created);
    for (const secret of [created.dataKey, created.wrappedKey]) {
      expect(error.message).not.toContain(secret.toString('base64').slice(0, 12));
      expect(error.message).not.toContain(secret.toString('hex').slice(0, 12));
    }
  });
});
