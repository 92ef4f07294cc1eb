import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sha256 } from '../support/bytes.js';
import { downloadContent, upload, waitForStored } from '../support/client.js';
import { headerLength, P, SEGMENT } from '../support/objects.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type StoreKind, type World } from '../support/world.js';

/**
 * Range requests on GET /api/v1/files/:id/content: one range -> 206 with exactly those bytes, fetched
 * segment-wise; unsatisfiable -> 416 with `Content-Range: bytes *\/size`; several ranges -> 200 whole file.
 * On S3 a recording proxy sits between the apps and s3rver, so the GetObject Range headers are visible.
 */

// Four segments: three full (P bytes each) and a partial last one.
const SIZE = 3 * P + 12_345;

describe.each<StoreKind>(['local', 's3'])('Range downloads (%s store)', (kind) => {
  let world: World;
  let alice: TestUser;
  let data: Buffer;
  let id: string;
  let emptyId: string;
  let H: number;

  beforeAll(async () => {
    world = await createWorld({ store: kind, workers: 'in-process' });
    alice = await createUser(world.server, `alice_${world.id}`);
    data = randomBytes(SIZE);
    const [file, empty] = await upload(world, alice, [
      { filename: 'four-segments.bin', body: data },
      { filename: 'empty.bin', body: Buffer.alloc(0) },
    ]);
    id = file!.id;
    emptyId = empty!.id;
    const row = await waitForStored(world, id);
    await waitForStored(world, emptyId);
    H = headerLength(row);
    expect(row.encryptedSize).toBe(H + 3 * SEGMENT + 12_345 + 16);
  }, 120_000);

  afterAll(async () => {
    await world?.close();
  });

  async function ranged(range: string) {
    const res = await downloadContent(world, alice, id, { Range: range });
    return res;
  }

  function expect206(res: Awaited<ReturnType<typeof ranged>>, start: number, end: number) {
    expect(res.status).toBe(206);
    expect(res.complete).toBe(true);
    expect(res.headers['content-range']).toBe(`bytes ${start}-${end}/${SIZE}`);
    expect(res.headers['content-length']).toBe(String(end - start + 1));
    expect(res.body.equals(data.subarray(start, end + 1))).toBe(true);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-disposition']).toMatch(/^attachment/);
    expect(res.headers.etag).toBe(`"sha256-${sha256(data)}"`);
  }

  it('first byte: bytes=0-0', async () => {
    expect206(await ranged('bytes=0-0'), 0, 0);
  });

  it('last byte: bytes=-1 and bytes=<size-1>-', async () => {
    expect206(await ranged('bytes=-1'), SIZE - 1, SIZE - 1);
    expect206(await ranged(`bytes=${SIZE - 1}-`), SIZE - 1, SIZE - 1);
  });

  it('a range crossing a segment boundary (and one crossing two)', async () => {
    expect206(await ranged(`bytes=${P - 10}-${P + 9}`), P - 10, P + 9);
    expect206(await ranged(`bytes=${P - 1}-${P}`), P - 1, P);
    expect206(await ranged(`bytes=${P - 5}-${2 * P + 4}`), P - 5, 2 * P + 4);
  });

  it('a suffix range: bytes=-20000 (crosses into the last segment)', async () => {
    expect206(await ranged('bytes=-20000'), SIZE - 20_000, SIZE - 1);
  });

  it('an open range: bytes=a- (and an end past the file is clamped)', async () => {
    expect206(await ranged(`bytes=${P + 5}-`), P + 5, SIZE - 1);
    expect206(await ranged(`bytes=${SIZE - 100}-${SIZE + 10_000}`), SIZE - 100, SIZE - 1);
  });

  it('a range inside a later segment fetches only the header and that segment', async () => {
    const start = 2 * P + 100;
    const end = 2 * P + 199;
    const getRange = vi.spyOn(world.store, 'getRange');
    const s3Before = world.s3?.proxy.requests.length ?? 0;
    try {
      expect206(await ranged(`bytes=${start}-${end}`), start, end);
      const calls = getRange.mock.calls.map(([key, from, to]) => ({ key, from, to }));
      expect(calls.every((c) => c.key === `objects/${id}`)).toBe(true);
      // The header prefix, the whole header, then segment 2 only (exactly its S ciphertext bytes).
      expect(calls).toEqual([
        { key: `objects/${id}`, from: 0, to: 9 },
        { key: `objects/${id}`, from: 0, to: H - 1 },
        { key: `objects/${id}`, from: H + 2 * SEGMENT, to: H + 3 * SEGMENT - 1 },
      ]);
      if (kind === 's3') {
        const gets = world.s3!.proxy.requests.slice(s3Before).filter((r) => r.method === 'GET');
        expect(gets.map((r) => r.range)).toEqual([
          'bytes=0-9',
          `bytes=0-${H - 1}`,
          `bytes=${H + 2 * SEGMENT}-${H + 3 * SEGMENT - 1}`,
        ]);
        expect(gets.every((r) => r.status === 206)).toBe(true);
        // What actually crossed the wire from S3: the header twice and one segment, not the object.
        const relayed = gets.reduce((n, r) => n + r.bytes, 0);
        expect(relayed).toBe(10 + H + SEGMENT);
      }
    } finally {
      getRange.mockRestore();
    }
  });

  it('a whole-file download still reads the object in one pass and matches the upload', async () => {
    const res = await downloadContent(world, alice, id);
    expect(res.status).toBe(200);
    expect(res.sha256).toBe(sha256(data));
  });

  it('unsatisfiable ranges -> 416 with Content-Range: bytes */size and a JSON error', async () => {
    for (const range of [
      `bytes=${SIZE}-`,
      `bytes=${SIZE}-${SIZE + 5}`,
      `bytes=${SIZE + 1000}-${SIZE + 2000}`,
    ]) {
      const res = await ranged(range);
      expect(res.status, range).toBe(416);
      expect(res.headers['content-range']).toBe(`bytes */${SIZE}`);
      expect(JSON.parse(res.body.toString())).toMatchObject({
        statusCode: 416,
        error: 'Range Not Satisfiable',
      });
    }
    const empty = await downloadContent(world, alice, emptyId, { Range: 'bytes=0-0' });
    expect(empty.status).toBe(416);
    expect(empty.headers['content-range']).toBe('bytes */0');
  });

  it('several ranges -> 200 with the whole body (no multipart/byteranges)', async () => {
    const res = await ranged('bytes=0-0,100-199');
    expect(res.status).toBe(200);
    expect(res.headers['content-range']).toBeUndefined();
    expect(res.headers['content-length']).toBe(String(SIZE));
    expect(res.sha256).toBe(sha256(data));
  });

  it('a malformed Range header is ignored: 200 with the whole body', async () => {
    const res = await ranged('bytes=abc');
    expect(res.status).toBe(200);
    expect(res.bytes).toBe(SIZE);
    expect(res.sha256).toBe(sha256(data));
  });
});
