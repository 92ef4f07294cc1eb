import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, sha256 } from '../support/bytes.js';
import { tempFiles, waitForStatus, waitForStored } from '../support/client.js';
import { listObjects } from '../support/objects.js';
import { tusRequests } from '../support/tus.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * A SHA-256 the client learns only while uploading (the dashboard hashes the file in a Web Worker as it
 * sends it) reaches the server on a PATCH, `Tess-Upload-Sha256`, at the latest on the one that completes
 * the upload: recorded under the upload's lock before that chunk, so before the row can be queued, and
 * compared by the worker exactly like a declaration at creation. Late, conflicting and foreign
 * declarations are refused and change nothing.
 */
describe('Tess-Upload-Sha256: a SHA-256 declared on a PATCH', () => {
  let world: World;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    world = await createWorld({ workers: 'in-process' });
    alice = await createUser(world.server, `alice_${world.id}`);
    bob = await createUser(world.server, `bob_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  const { create, patch, head } = tusRequests(() => world.server);
  const offsetOf = (user: TestUser, id: string) => head(user, id).then((res) => res.headers['upload-offset']);

  const declare = (hex: string) => ({ 'Tess-Upload-Sha256': hex });

  it('on the final PATCH: in the row before it is queued, and a match is clientVerified', async () => {
    const body = randomBytes(MiB + 11);
    const id = await create(alice, body.length, {
      'Upload-Metadata': `filename ${Buffer.from('declared-late.bin').toString('base64')}`,
    });
    await patch(alice, id, 0, body.subarray(0, MiB)).expect(204);
    expect((await world.files.findById(id))!.clientSha256).toBeNull();
    const last = await patch(alice, id, MiB, body.subarray(MiB), declare(sha256(body).toUpperCase()));
    expect(last.status, JSON.stringify(last.body)).toBe(204);
    // The 204 comes after the row turned queued: the declaration is already there (lowercase).
    const queued = (await world.files.findById(id))!;
    expect(queued.clientSha256).toBe(sha256(body));
    expect(['queued', 'processing', 'stored']).toContain(queued.status);
    await waitForStored(world, id);
    const view = await request(world.server).get(`/api/v1/files/${id}`).set(alice.auth).expect(200);
    expect(view.body).toMatchObject({
      clientSha256: sha256(body),
      clientVerified: true,
      sha256: sha256(body),
    });
  });

  it('a wrong one fails the file as client-hash-mismatch and stores nothing', async () => {
    const body = randomBytes(4096);
    const objectsBefore = await listObjects(world);
    const id = await create(alice, body.length);
    await patch(alice, id, 0, body, declare(sha256(Buffer.from('another file')))).expect(204);
    const failed = await waitForStatus(world, id, 'failed');
    expect(failed.error).toMatch(/^client-hash-mismatch: /);
    expect(await listObjects(world)).toEqual(objectsBefore);
    expect(await tempFiles(world.config)).not.toContain(id);
  });

  it('on an earlier PATCH: recorded, repeated unchanged on the next ones (a retry), shown by HEAD', async () => {
    const body = randomBytes(3000);
    const id = await create(alice, body.length);
    await patch(alice, id, 0, body.subarray(0, 1000), declare(sha256(body))).expect(204);
    expect((await world.files.findById(id))!.clientSha256).toBe(sha256(body));
    const state = await head(alice, id);
    expect(state.headers['upload-metadata']).toContain(
      `sha256 ${Buffer.from(sha256(body)).toString('base64')}`,
    );
    await patch(alice, id, 1000, body.subarray(1000, 2000), declare(sha256(body))).expect(204);
    await patch(alice, id, 2000, body.subarray(2000), declare(sha256(body))).expect(204);
    await waitForStored(world, id);
    expect((await world.files.findById(id))!.clientVerified).toBe(true);
  });

  it('a second, different declaration is 409 and changes nothing: neither the row, nor the offset', async () => {
    const body = randomBytes(2000);
    const first = await create(alice, body.length);
    await patch(alice, first, 0, body.subarray(0, 1000), declare(sha256(body))).expect(204);
    const other = await patch(alice, first, 1000, body.subarray(1000), declare(sha256(Buffer.from('x'))));
    expect(other.status).toBe(409);
    expect(other.body.message).toMatch(/already has a different declared SHA-256/);
    expect(await offsetOf(alice, first)).toBe('1000');
    expect((await world.files.findById(first))!).toMatchObject({
      status: 'receiving',
      clientSha256: sha256(body),
    });

    // Declared at creation (Upload-Metadata sha256), then another value on a PATCH.
    const second = await create(alice, body.length, {
      'Upload-Metadata': `sha256 ${Buffer.from(sha256(body)).toString('base64')}`,
    });
    expect((await patch(alice, second, 0, body, declare(sha256(Buffer.from('y'))))).status).toBe(409);
    expect(await offsetOf(alice, second)).toBe('0');
    // The same value as at creation is no second declaration.
    await patch(alice, second, 0, body, declare(sha256(body))).expect(204);
    await waitForStored(world, second);
  });

  it('after the last byte it is refused (409), except as the repeat of the final PATCH it came with', async () => {
    const body = randomBytes(500);
    const undeclared = await create(alice, body.length);
    await patch(alice, undeclared, 0, body).expect(204);
    const late = await patch(alice, undeclared, body.length, Buffer.alloc(0), declare(sha256(body)));
    expect(late.status).toBe(409);
    expect(late.body.message).toMatch(/only be declared before its last byte/);
    await waitForStored(world, undeclared);
    expect((await world.files.findById(undeclared))!).toMatchObject({
      clientSha256: null,
      clientVerified: null,
    });

    const declared = await create(alice, body.length);
    await patch(alice, declared, 0, body, declare(sha256(body))).expect(204);
    // The answer to the final PATCH was lost: the client repeats it, declaration included.
    await patch(alice, declared, body.length, Buffer.alloc(0), declare(sha256(body))).expect(204);
    const changed = await patch(
      alice,
      declared,
      body.length,
      Buffer.alloc(0),
      declare(sha256(Buffer.from('z'))),
    );
    expect(changed.status).toBe(409);
    await waitForStored(world, declared);
    expect((await world.files.findById(declared))!.clientVerified).toBe(true);
  });

  it("another user's upload answers 404 and keeps no declaration; a malformed one is 400", async () => {
    const body = randomBytes(100);
    const id = await create(alice, body.length);
    const foreign = await patch(bob, id, 0, body, declare(sha256(body)));
    expect(foreign.status).toBe(404);
    for (const bad of ['abc', `${sha256(body)}0`, 'g'.repeat(64), `${sha256(body).slice(0, 63)} `]) {
      const res = await patch(alice, id, 0, body, declare(bad));
      expect(res.status, bad).toBe(400);
      expect(res.body.message).toMatch(/Tess-Upload-Sha256 must be 64 hexadecimal/);
    }
    expect(await offsetOf(alice, id)).toBe('0');
    expect((await world.files.findById(id))!).toMatchObject({ status: 'receiving', clientSha256: null });
  });
});
