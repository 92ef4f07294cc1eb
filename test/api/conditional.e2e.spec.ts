import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../support/bytes.js';
import { downloadContent, rawRequest, upload, waitForStored } from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Conditional requests on GET /api/v1/files/:id/content (RFC 9110 §13): If-None-Match answers 304
 * without a body for the current ETag (strong or weak, in a list, or `*`); If-Range with a stale
 * validator (another tag, a weak tag, a date) ignores the Range and sends the whole file.
 */

describe('conditional downloads', () => {
  let world: World;
  let alice: TestUser;
  let data: Buffer;
  let id: string;
  let etag: string;

  beforeAll(async () => {
    world = await createWorld({ workers: 'in-process' });
    alice = await createUser(world.server, `alice_${world.id}`);
    data = randomBytes(300_000);
    const [file] = await upload(world, alice, [{ filename: 'cached.bin', body: data }]);
    id = file!.id;
    await waitForStored(world, id);
    etag = `"sha256-${sha256(data)}"`;
  }, 120_000);

  afterAll(async () => {
    await world?.close();
  });

  it('sends the ETag the README documents', async () => {
    const res = await downloadContent(world, alice, id);
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe(etag);
  });

  it.each([
    ['the exact ETag', () => etag],
    ['the weak form of it', () => `W/${etag}`],
    ['a list that holds it', () => `"sha256-${'0'.repeat(64)}", ${etag}`],
    ['*', () => '*'],
  ])('If-None-Match with %s -> 304, no body, the ETag', async (_, value) => {
    const res = await downloadContent(world, alice, id, { 'If-None-Match': value() });
    expect(res.status).toBe(304);
    expect(res.bytes).toBe(0);
    expect(res.headers.etag).toBe(etag);
    expect(res.headers['cache-control']).toBe('private, no-store');
  });

  it('If-None-Match wins over a Range, and HEAD gets the 304 too', async () => {
    const ranged = await downloadContent(world, alice, id, { 'If-None-Match': etag, Range: 'bytes=0-9' });
    expect(ranged.status).toBe(304);
    const head = await rawRequest(`${world.base}/api/v1/files/${id}/content`, {
      method: 'HEAD',
      headers: { ...alice.auth, 'If-None-Match': etag },
    });
    expect(head.status).toBe(304);
  });

  it('If-None-Match with another tag -> 200 and the whole file', async () => {
    const res = await downloadContent(world, alice, id, { 'If-None-Match': `"sha256-${'f'.repeat(64)}"` });
    expect(res.status).toBe(200);
    expect(res.complete).toBe(true);
    expect(res.body.equals(data)).toBe(true);
  });

  it('If-Range with the current ETag serves the Range', async () => {
    const res = await downloadContent(world, alice, id, { Range: 'bytes=10-19', 'If-Range': etag });
    expect(res.status).toBe(206);
    expect(res.body.equals(data.subarray(10, 20))).toBe(true);
  });

  it.each([
    ['another tag', `"sha256-${'a'.repeat(64)}"`],
    ['the weak form of the current tag', 'weak'],
    ['a date', 'Wed, 21 Oct 2015 07:28:00 GMT'],
  ])('If-Range with %s -> the Range is ignored: 200 and the whole file', async (_, value) => {
    const res = await downloadContent(world, alice, id, {
      Range: 'bytes=10-19',
      'If-Range': value === 'weak' ? `W/${etag}` : value,
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-range']).toBeUndefined();
    expect(res.complete).toBe(true);
    expect(res.body.equals(data)).toBe(true);
  });

  it("another user's id still answers 404, whatever the validator", async () => {
    const bob = await createUser(world.server, `bob_${world.id}`);
    const res = await downloadContent(world, bob, id, { 'If-None-Match': '*' });
    expect(res.status).toBe(404);
  });
});
