import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, SHA256_OF_NOTHING, sha256 } from '../support/bytes.js';
import { downloadContent, type UploadedFile, upload, userId, waitForStored } from '../support/client.js';
import { P } from '../support/objects.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type StoreKind, type World } from '../support/world.js';

/**
 * Upload through the API -> crypto worker -> object store -> GET /api/v1/files/:id/content, for sizes
 * around the 64 KiB and segment (1 MiB - 16) boundaries, a multi-part S3 object and 50 MiB, on both
 * object stores: the SHA-256 of every download equals that of the upload.
 */

const SIZES: Array<[string, number]> = [
  ['0 bytes', 0],
  ['1 byte', 1],
  ['65535 bytes', 65535],
  ['65536 bytes', 65536],
  ['65537 bytes', 65537],
  ['one full segment (1 MiB - 16)', P],
  ['one segment + 1 (1 MiB - 15)', P + 1],
  ['5 MiB + 3 (two S3 parts)', 5 * MiB + 3],
  ['50 MiB', 50 * MiB],
];

const NON_ASCII_NAME = 'Grüße – résumé 日本.txt';

describe.each<StoreKind>(['local', 's3'])('round trip through the API (%s store)', (kind) => {
  let world: World;
  let alice: TestUser;
  const sent = new Map<number, { file: UploadedFile; sha256: string }>();

  beforeAll(async () => {
    world = await createWorld({ store: kind, workers: 'in-process' });
    alice = await createUser(world.server, `alice_${world.id}`);
    // Small files in one request; the big ones each on their own (one in flight at a time keeps memory low).
    const small = SIZES.filter(([, size]) => size <= P + 1).map(([, size]) => size);
    const bodies = small.map((size) => randomBytes(size));
    const accepted = await upload(
      world,
      alice,
      bodies.map((body, i) => ({ filename: `file-${small[i]}.bin`, body })),
    );
    accepted.forEach((file, i) => {
      sent.set(small[i]!, { file, sha256: sha256(bodies[i]!) });
    });
    for (const [, size] of SIZES.filter(([, s]) => s > P + 1)) {
      const body = randomBytes(size);
      const [file] = await upload(world, alice, [{ filename: `file-${size}.bin`, body }]);
      sent.set(size, { file: file!, sha256: sha256(body) });
    }
    for (const { file } of sent.values()) await waitForStored(world, file.id, { timeoutMs: 120_000 });
  }, 240_000);

  afterAll(async () => {
    await world?.close();
  });

  it.each(SIZES)(
    '%s: the download is byte-identical (SHA-256) and carries the recorded headers',
    async (_, size) => {
      const { file, sha256: expected } = sent.get(size)!;
      expect(file.size).toBe(size);
      const res = await downloadContent(world, alice, file.id, {});
      expect(res.status).toBe(200);
      expect(res.complete).toBe(true);
      expect(res.bytes).toBe(size);
      expect(res.sha256).toBe(expected);
      if (size === 0) expect(res.sha256).toBe(SHA256_OF_NOTHING);
      expect(res.headers['content-length']).toBe(String(size));
      expect(res.headers.etag).toBe(`"sha256-${expected}"`);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['accept-ranges']).toBe('bytes');
      // A token-safe name may be sent bare or quoted (RFC 6266 allows both).
      expect(res.headers['content-disposition']).toMatch(
        new RegExp(`^attachment; filename="?file-${size}\\.bin"?$`),
      );
      expect(res.headers['content-range']).toBeUndefined();
      const row = (await world.files.findById(file.id))!;
      expect(row.sha256).toBe(expected);
      expect(row.storageDriver).toBe(kind);
    },
  );

  it('encodes a non-ASCII filename per RFC 6266/5987 (ASCII fallback + filename*)', async () => {
    const body = randomBytes(1234);
    const [file] = await upload(world, alice, [
      { filename: NON_ASCII_NAME, contentType: 'text/plain', body },
    ]);
    expect(file!.filename).toBe(NON_ASCII_NAME);
    await waitForStored(world, file!.id);
    const res = await downloadContent(world, alice, file!.id);
    expect(res.status).toBe(200);
    expect(res.sha256).toBe(sha256(body));
    const disposition = res.headers['content-disposition']!;
    expect(disposition).toMatch(/^attachment; /);
    // Header values are ASCII only: the raw name never reaches the header.
    expect(disposition).toMatch(/^[\x20-\x7e]+$/);
    const fallback = /filename="([^"]*)"/.exec(disposition);
    expect(fallback?.[1]).toBeDefined();
    expect(fallback![1]).toMatch(/^[\x20-\x7e]+$/);
    const extended = /filename\*=UTF-8''([^;\s]+)/i.exec(disposition);
    expect(extended?.[1]).toBeDefined();
    expect(decodeURIComponent(extended![1]!)).toBe(NON_ASCII_NAME);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('answers 409 with the status for files that are not stored yet (queued, processing, failed)', async () => {
    const ownerId = await userId(world, alice);
    for (const status of ['queued', 'processing', 'failed'] as const) {
      const id = randomUUID();
      await world.files.createQueued({
        id,
        ownerId,
        filename: `${status}.bin`,
        contentType: 'application/octet-stream',
        size: 10,
        tempPath: id,
      });
      // No job exists for these rows, so no worker will touch them.
      if (status !== 'queued')
        await world.dataSource.query('UPDATE files SET status = $1 WHERE id = $2', [status, id]);
      const res = await downloadContent(world, alice, id);
      expect(res.status).toBe(409);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(res.body.toString())).toEqual({
        statusCode: 409,
        error: 'Conflict',
        message: `This file is ${status}; it can be read once it is stored.`,
      });
      // A Range header does not change the answer.
      const ranged = await downloadContent(world, alice, id, { Range: 'bytes=0-0' });
      expect(ranged.status).toBe(409);
      await world.files.delete(id);
    }
  });
});
