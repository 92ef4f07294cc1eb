import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShareRepository } from '#common';
import { sha256 } from '../support/bytes.js';
import { auditCount, upload, waitForStored } from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * The owner's share-link API: POST/GET /api/v1/files/:id/shares, GET /api/v1/shares, DELETE
 * /api/v1/shares/:id. Owner only (another user's file or link answers 404), stored files only (409),
 * defaults, limits and validation, the token stored only as its SHA-256, revocation with the file.
 */

let world: World;
let alice: TestUser;
let bob: TestUser;
let fileId: string;
let data: Buffer;

const DAY = 86_400_000;

beforeAll(async () => {
  world = await createWorld({ workers: 'in-process' });
  alice = await createUser(world.server, `alice_${world.id}`);
  bob = await createUser(world.server, `bob_${world.id}`);
  data = randomBytes(50_000);
  const [file] = await upload(world, alice, [{ filename: 'report.bin', body: data }]);
  fileId = file!.id;
  await waitForStored(world, fileId);
}, 120_000);

afterAll(async () => {
  await world?.close();
});

function createShare(user: TestUser, id: string, body: object = {}) {
  return request(world.server).post(`/api/v1/files/${id}/shares`).set(user.auth).send(body);
}

describe('share link API', () => {
  it('creates a link with the defaults: 7 days, unlimited, no password; the token is shown once', async () => {
    const before = Date.now();
    const res = await createShare(alice, fileId).expect(201);
    expect(res.body).toMatchObject({
      fileId,
      state: 'active',
      maxDownloads: null,
      downloads: 0,
      lastDownloadAt: null,
      hasPassword: false,
      note: null,
      revokedAt: null,
    });
    const expires = Date.parse(res.body.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 7 * DAY - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 7 * DAY + 1000);
    expect(res.body.url).toMatch(new RegExp(`^${world.base}/s/[A-Za-z0-9_-]{43}$`));
    expect(await auditCount(world, fileId, 'share.created')).toBeGreaterThanOrEqual(1);

    // The listing never carries a token or URL.
    const listed = await request(world.server)
      .get(`/api/v1/files/${fileId}/shares`)
      .set(alice.auth)
      .expect(200);
    const mine = listed.body.items.find((s: { id: string }) => s.id === res.body.id);
    expect(mine).toBeDefined();
    expect(mine.url).toBeUndefined();
    expect(JSON.stringify(listed.body)).not.toContain(res.body.url.split('/s/')[1]);
  });

  it('stores only the SHA-256 of the token: nothing in the database opens the link', async () => {
    const res = await createShare(alice, fileId, { password: 'a share password 1' }).expect(201);
    const token = res.body.url.split('/s/')[1] as string;
    const rows: Array<Record<string, unknown>> = await world.dataSource.query(
      'SELECT * FROM shares WHERE id = $1',
      [res.body.id],
    );
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(token);
    expect(rows[0]!.token_hash).toBe(sha256(token));
    expect(String(rows[0]!.password_hash)).toMatch(/^\$argon2id\$/);
    expect(dump).not.toContain('a share password 1');
    // Its hash as a link token is just an unknown link.
    await request(world.server)
      .get(`/s/${sha256(token).slice(0, 43)}`)
      .expect(404);
  });

  it('takes expiresIn, expiresAt, maxDownloads, a password and a note', async () => {
    const res = await createShare(alice, fileId, {
      expiresIn: '2h',
      maxDownloads: 3,
      password: 'another fine passphrase',
      note: '  for the auditors  ',
    }).expect(201);
    expect(res.body).toMatchObject({ maxDownloads: 3, hasPassword: true, note: 'for the auditors' });
    expect(Math.abs(Date.parse(res.body.expiresAt) - (Date.now() + 2 * 3_600_000))).toBeLessThan(5000);
    const at = new Date(Date.now() + 3 * DAY).toISOString();
    const byDate = await createShare(alice, fileId, { expiresAt: at }).expect(201);
    expect(byDate.body.expiresAt).toBe(at);
    const capped = await createShare(alice, fileId, { expiresIn: '30d' }).expect(201);
    expect(capped.body.maxDownloads).toBeNull();
  });

  it.each([
    [{ expiresIn: '30m' }, /expiresIn: must be at least 1h/],
    [{ expiresIn: '31d' }, /at most 720h .*SHARE_MAX_EXPIRY/],
    [{ expiresIn: 'soon' }, /expiresIn: must be a duration/],
    [{ expiresAt: '2020-01-01T00:00:00Z' }, /expiresAt must be in the future/],
    [{ expiresAt: 'tomorrow' }, /expiresAt: must be an ISO 8601 date-time/],
    [{ expiresIn: '1d', expiresAt: new Date(Date.now() + DAY).toISOString() }, /not both/],
    [{ maxDownloads: 0 }, /maxDownloads: must be a whole number from 1 to 1000/],
    [{ maxDownloads: 1001 }, /maxDownloads: must be a whole number from 1 to 1000/],
    [{ maxDownloads: 1.5 }, /maxDownloads: must be a whole number/],
    [{ password: 'short' }, /password: Password must be at least 8 characters/],
    [{ password: 'password123' }, /password: That password is one of the most common/],
    [{ note: 'x'.repeat(201) }, /note: must be at most 200 characters/],
    [{ owner: 'someone' }, /Unrecognized key/],
  ])('refuses %j with 400 and a readable message, creating nothing', async (body, message) => {
    const before = (await world.app.get(ShareRepository).listForFile(await ownerId(), fileId)).length;
    const res = await createShare(alice, fileId, body).expect(400);
    expect(res.body.message).toMatch(message);
    expect((await world.app.get(ShareRepository).listForFile(await ownerId(), fileId)).length).toBe(before);
  });

  it('shares only stored files (409) and answers 404 for ids that are not the owner’s', async () => {
    const [other] = await upload(world, alice, [{ filename: 'soon-corrupt.bin', body: randomBytes(100) }]);
    await waitForStored(world, other!.id);
    await world.files.markCorrupt(other!.id, 'test: marked corrupt');
    const res = await createShare(alice, other!.id).expect(409);
    expect(res.body.message).toBe('Only stored files can be shared; this one is corrupt.');

    await createShare(bob, fileId).expect(404);
    await createShare(alice, '00000000-0000-4000-8000-000000000000').expect(404);
    await createShare(alice, 'not-a-uuid').expect(404);
    await request(world.server).get(`/api/v1/files/${fileId}/shares`).set(bob.auth).expect(404);
  });

  it("never lets another user see or revoke a link; the owner's revoke is 204, then 404", async () => {
    const { body: share } = await createShare(alice, fileId).expect(201);
    const bobs = await request(world.server).get('/api/v1/shares').set(bob.auth).expect(200);
    expect(bobs.body.items.map((s: { id: string }) => s.id)).not.toContain(share.id);
    await request(world.server).delete(`/api/v1/shares/${share.id}`).set(bob.auth).expect(404);
    await request(world.server).get(share.url.replace(world.base, '')).expect(200);

    await request(world.server).delete(`/api/v1/shares/${share.id}`).set(alice.auth).expect(204);
    await request(world.server).delete(`/api/v1/shares/${share.id}`).set(alice.auth).expect(404);
    await request(world.server).get(share.url.replace(world.base, '')).expect(410);
    const listed = await request(world.server).get(`/api/v1/files/${fileId}/shares`).set(alice.auth);
    const revoked = listed.body.items.find((s: { id: string }) => s.id === share.id);
    expect(revoked.state).toBe('revoked');
    expect(revoked.revokedAt).not.toBeNull();
    const events: Array<{ details: { shareId: string; reason: string } }> = await world.dataSource.query(
      "SELECT details FROM audit_events WHERE action = 'share.revoked' AND details->>'shareId' = $1",
      [share.id],
    );
    expect(events.map((e) => e.details.reason)).toEqual(['revoked by the owner']);
  });

  it('needs CSRF for session calls, and authentication at all', async () => {
    await request(world.server).post(`/api/v1/files/${fileId}/shares`).send({}).expect(401);
    await alice.agent.post(`/api/v1/files/${fileId}/shares`).send({}).expect(403);
    const res = await alice.agent
      .post(`/api/v1/files/${fileId}/shares`)
      .set('X-CSRF-Token', alice.csrf)
      .send({ maxDownloads: 1 })
      .expect(201);
    expect(res.body.maxDownloads).toBe(1);
  });

  it('pages through all links newest first with a keyset cursor', async () => {
    const carol = await createUser(world.server, `carol_${world.id}`);
    const [file] = await upload(world, carol, [{ filename: 'c.bin', body: randomBytes(10) }]);
    await waitForStored(world, file!.id);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createShare(carol, file!.id).expect(201)).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: request.Response = await request(world.server)
        .get('/api/v1/shares')
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(carol.auth)
        .expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((s: { id: string }) => s.id));
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    await request(world.server).get('/api/v1/shares?cursor=garbage').set(carol.auth).expect(400);
  });

  it("deleting the file revokes its links (audited); they answer 410, the owner's list keeps them", async () => {
    const [file] = await upload(world, alice, [{ filename: 'to-delete.bin', body: randomBytes(10) }]);
    await waitForStored(world, file!.id);
    const a = (await createShare(alice, file!.id).expect(201)).body;
    const b = (await createShare(alice, file!.id, { maxDownloads: 2 }).expect(201)).body;
    await request(world.server).delete(`/api/v1/files/${file!.id}`).set(alice.auth).expect(204);
    for (const share of [a, b]) {
      const page = await request(world.server).get(share.url.replace(world.base, '')).expect(410);
      expect(page.text).toContain('The shared file is no longer available');
      expect(page.text).not.toContain('to-delete.bin');
    }
    const all = await request(world.server).get('/api/v1/shares?limit=100').set(alice.auth).expect(200);
    for (const share of [a, b]) {
      const listed = all.body.items.find((s: { id: string }) => s.id === share.id);
      expect(listed).toMatchObject({ fileId: null, state: 'revoked' });
    }
    const revoked: Array<{ details: { shareId: string; reason: string } }> = await world.dataSource.query(
      "SELECT details FROM audit_events WHERE action = 'share.revoked' AND file_id = $1",
      [file!.id],
    );
    expect(revoked.map((e) => e.details).sort((x, y) => x.shareId.localeCompare(y.shareId))).toEqual(
      [a.id, b.id].sort().map((shareId) => ({ shareId, reason: 'file deleted' })),
    );
  });
});

async function ownerId(): Promise<string> {
  return (await world.users.findByUsername(alice.username))!.id;
}
