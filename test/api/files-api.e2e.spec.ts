import { randomBytes, randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  downloadContent,
  type UploadedFile,
  upload,
  userId,
  waitForStatus,
  waitForStored,
} from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * The files and jobs REST API: pagination, validation, response shapes (docs/architecture.md),
 * authentication, other users' ids, malformed ids, and session + CSRF.
 */

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const NOT_V4 = '00000000-0000-0000-0000-000000000000';

let world: World;
let alice: TestUser;
let bob: TestUser;
let carol: TestUser;
let stored: UploadedFile;
let failed: UploadedFile;
let queued: UploadedFile;
let storedBody: Buffer;

beforeAll(async () => {
  world = await createWorld();
  alice = await createUser(world.server, `alice_${world.id}`);
  bob = await createUser(world.server, `bob_${world.id}`);
  carol = await createUser(world.server, `carol_${world.id}`);
  storedBody = randomBytes(3000);
  [stored, failed] = await upload(world, alice, [
    { filename: 'stored.txt', contentType: 'text/plain', body: storedBody },
    { filename: 'failed.bin', body: randomBytes(100) },
  ]).then((files) => files as [UploadedFile, UploadedFile]);
}, 60_000);

afterAll(async () => {
  await world?.close();
});

const server = () => world.server;

describe('jobs API shapes', () => {
  it('a queued job (no worker running yet)', async () => {
    const res = await request(server()).get(`/api/v1/jobs/${stored.id}`).set(alice.auth).expect(200);
    expect(res.body).toEqual({
      id: stored.id,
      fileId: stored.id,
      status: 'queued',
      progress: { stage: 'queued', bytesDone: 0, bytesTotal: 3000 },
      createdAt: expect.stringMatching(ISO),
    });
    const file = await request(server()).get(`/api/v1/files/${stored.id}`).set(alice.auth).expect(200);
    expect(file.body).toEqual({
      id: stored.id,
      filename: 'stored.txt',
      size: 3000,
      contentType: 'text/plain',
      detectedType: null,
      status: 'queued',
      sha1: null,
      sha256: null,
      createdAt: res.body.createdAt,
      // No version stored yet; the one arriving will be version 1.
      version: 1,
      versionCount: 0,
    });
  });

  it('completed and failed jobs, and the files behind them', async () => {
    // Losing the temp file before the worker runs makes that job fail for good.
    await rm(join(world.config.tempDir, failed.id));
    await world.startInProcessWorker();
    const row = await waitForStored(world, stored.id);
    await waitForStatus(world, failed.id, 'failed');

    const done = await request(server()).get(`/api/v1/jobs/${stored.id}`).set(alice.auth).expect(200);
    expect(done.body).toEqual({
      id: stored.id,
      fileId: stored.id,
      status: 'completed',
      progress: { stage: 'stored', bytesDone: 3000, bytesTotal: 3000 },
      createdAt: expect.stringMatching(ISO),
      finishedAt: expect.stringMatching(ISO),
    });
    expect(Date.parse(done.body.finishedAt)).toBeGreaterThanOrEqual(Date.parse(done.body.createdAt));

    const bad = await request(server()).get(`/api/v1/jobs/${failed.id}`).set(alice.auth).expect(200);
    expect(bad.body).toEqual({
      id: failed.id,
      fileId: failed.id,
      status: 'failed',
      progress: { stage: 'failed', bytesDone: 0, bytesTotal: 100 },
      error: expect.stringMatching(/no longer on the server/),
      createdAt: expect.stringMatching(ISO),
      finishedAt: expect.stringMatching(ISO),
    });

    const file = await request(server()).get(`/api/v1/files/${stored.id}`).set(alice.auth).expect(200);
    expect(file.body).toEqual({
      id: stored.id,
      filename: 'stored.txt',
      size: 3000,
      contentType: 'text/plain',
      // Random bytes declared as text: the content decides, and TYPE_MISMATCH=flag (the default) says so.
      detectedType: 'application/octet-stream',
      typeWarning: 'the name says .txt (text/plain) but the content is application/octet-stream',
      status: 'stored',
      sha1: row.sha1,
      sha256: row.sha256,
      createdAt: expect.stringMatching(ISO),
      storedAt: expect.stringMatching(ISO),
      version: 1,
      versionCount: 1,
    });
    expect(file.body.sha1).toMatch(/^[0-9a-f]{40}$/);
    expect(file.body.sha256).toMatch(/^[0-9a-f]{64}$/);
    const failedFile = await request(server()).get(`/api/v1/files/${failed.id}`).set(alice.auth).expect(200);
    expect(failedFile.body).toMatchObject({ status: 'failed', error: bad.body.error });
    expect(failedFile.body).not.toHaveProperty('storedAt');

    const list = await request(server()).get('/api/v1/jobs').set(alice.auth).expect(200);
    expect(list.body.nextCursor).toBeNull();
    expect(list.body.items.map((j: { id: string }) => j.id).sort()).toEqual([stored.id, failed.id].sort());
    expect(list.body.items.find((j: { id: string }) => j.id === stored.id)).toEqual(done.body);

    // A queued job again (uploaded while the worker runs it may already be done: insert a bare row).
    const id = randomUUID();
    await world.files.createQueued({
      id,
      ownerId: await userId(world, alice),
      filename: 'q.bin',
      contentType: 'application/octet-stream',
      size: 7,
      tempPath: id,
    });
    queued = { id, filename: 'q.bin', size: 7, status: 'queued', jobId: id };
    const q = await request(server()).get(`/api/v1/jobs/${id}`).set(alice.auth).expect(200);
    expect(q.body).toMatchObject({
      status: 'queued',
      progress: { stage: 'queued', bytesDone: 0, bytesTotal: 7 },
    });
    expect(q.body).not.toHaveProperty('finishedAt');
  });
});

describe('pagination', () => {
  const N = 23;
  let expected: string[];

  beforeAll(async () => {
    const ownerId = await userId(world, carol);
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const id = randomUUID();
      ids.push(id);
      await world.files.createQueued({
        id,
        ownerId,
        filename: `p${i}.bin`,
        contentType: 'application/octet-stream',
        size: i,
        tempPath: id,
      });
    }
    // Timestamps as a busy server produces them: several rows in the same millisecond (different
    // microseconds) and some with identical timestamps (ties broken by id).
    for (let i = 0; i < N; i++) {
      const micros = String(100 + (i % 12)).padStart(6, '0');
      const second = 10 + Math.floor(i / 12);
      await world.dataSource.query('UPDATE files SET created_at = $1 WHERE id = $2', [
        `2026-03-01T12:00:${second}.${i % 5 === 0 ? '000100' : micros}Z`,
        ids[i],
      ]);
    }
    const rows: Array<{ id: string }> = await world.dataSource.query(
      'SELECT id FROM files WHERE owner_id = $1 ORDER BY created_at DESC, id DESC',
      [ownerId],
    );
    expected = rows.map((r) => r.id);
    expect(expected).toHaveLength(N);
  });

  for (const path of ['/api/v1/files', '/api/v1/jobs']) {
    it(`${path}: nextCursor walks every page in order without duplicates or gaps`, async () => {
      for (const limit of [1, 5, 7, 23, 100]) {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const query: Record<string, string | number> = { limit };
          if (cursor) query.cursor = cursor;
          const res = await request(server()).get(path).query(query).set(carol.auth).expect(200);
          expect(res.body.items.length).toBeLessThanOrEqual(limit);
          seen.push(...res.body.items.map((f: { id: string }) => f.id));
          cursor = res.body.nextCursor;
          pages += 1;
          expect(pages).toBeLessThanOrEqual(N + 1);
        } while (cursor);
        expect(seen, `limit ${limit}`).toEqual(expected);
        expect(pages).toBe(Math.ceil(N / limit));
      }
    });
  }

  it('defaults to 25 items and only ever lists the caller’s own files', async () => {
    const res = await request(server()).get('/api/v1/files').set(carol.auth).expect(200);
    expect(res.body.items).toHaveLength(N);
    expect(res.body.nextCursor).toBeNull();
    const bobs = await request(server()).get('/api/v1/files').set(bob.auth).expect(200);
    expect(bobs.body).toEqual({ items: [], nextCursor: null });
  });

  it('rejects bad limits and cursors with 400 JSON', async () => {
    for (const path of ['/api/v1/files', '/api/v1/jobs']) {
      for (const query of ['limit=0', 'limit=101', 'limit=abc', 'limit=1.5', 'limit=-1', 'limit=']) {
        const res = await request(server()).get(`${path}?${query}`).set(carol.auth);
        expect(res.status, `${path}?${query}`).toBe(400);
        expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
        expect(res.body.message).toMatch(/limit/);
      }
      for (const cursor of [
        'nonsense',
        Buffer.from('2026-01-01T00:00:00.000Z|not-a-uuid').toString('base64url'),
        Buffer.from(`yesterday|${randomUUID()}`).toString('base64url'),
        'x'.repeat(201),
      ]) {
        const res = await request(server()).get(path).query({ cursor }).set(carol.auth);
        expect(res.status, cursor).toBe(400);
        expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
        expect(res.body.message).toMatch(/cursor/);
      }
      const twice = await request(server()).get(`${path}?cursor=a&cursor=b`).set(carol.auth);
      expect(twice.status).toBe(400);
    }
  });
});

describe('authentication, ownership and ids', () => {
  const endpoints = (id: string): Array<[string, string]> => [
    ['GET', `/api/v1/files/${id}`],
    ['GET', `/api/v1/files/${id}/content`],
    ['POST', `/api/v1/files/${id}/verify`],
    ['DELETE', `/api/v1/files/${id}`],
    ['GET', `/api/v1/jobs/${id}`],
  ];

  function call(method: string, path: string) {
    const agent = request(server());
    return method === 'GET' ? agent.get(path) : method === 'POST' ? agent.post(path) : agent.delete(path);
  }

  it('every endpoint answers 401 JSON without credentials or with a bad token', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/files'],
      ['GET', '/api/v1/jobs'],
      ...endpoints(stored.id),
    ] as Array<[string, string]>) {
      const res = await call(method, path);
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
      const bad = await call(method, path).set('Authorization', 'Bearer not-a-real-token');
      expect(bad.status, `${method} ${path} (bad token)`).toBe(401);
    }
    expect((await world.files.findById(stored.id))?.status).toBe('stored');
  });

  it("another user's ids answer 404, exactly like missing ones, and change nothing", async () => {
    for (const [method, path] of endpoints(stored.id)) {
      const res = await call(method, path).set(bob.auth);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
      const missing = await call(method, path.replace(stored.id, randomUUID())).set(bob.auth);
      expect(missing.status).toBe(404);
      expect(missing.body.message).toBe(res.body.message);
    }
    const row = (await world.files.findById(stored.id))!;
    expect(row.status).toBe('stored');
    const content = await downloadContent(world, alice, stored.id);
    expect(content.status).toBe(200);
    expect(content.body.equals(storedBody)).toBe(true);
  });

  it('malformed ids answer 404', async () => {
    for (const bad of ['not-a-uuid', NOT_V4, `${stored.id}x`, '..%2F..%2Fetc']) {
      for (const [method, path] of endpoints(bad)) {
        const res = await call(method, path).set(alice.auth);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.body).toMatchObject({ statusCode: 404 });
      }
    }
  });

  it('a session works for reads; verify and delete need the CSRF token (403 without)', async () => {
    await alice.agent.get('/api/v1/files').expect(200);
    await alice.agent.get(`/api/v1/jobs/${stored.id}`).expect(200);
    await alice.agent.get(`/api/v1/files/${stored.id}/content`).expect(200);

    const noCsrfVerify = await alice.agent.post(`/api/v1/files/${stored.id}/verify`);
    expect(noCsrfVerify.status).toBe(403);
    expect(noCsrfVerify.body).toMatchObject({ statusCode: 403, error: 'Forbidden' });
    const wrongCsrf = await alice.agent
      .post(`/api/v1/files/${stored.id}/verify`)
      .set('X-CSRF-Token', 'forged');
    expect(wrongCsrf.status).toBe(403);
    const noCsrfDelete = await alice.agent.delete(`/api/v1/files/${queued.id}`);
    expect(noCsrfDelete.status).toBe(403);
    expect(await world.files.findById(queued.id)).not.toBeNull();

    const verified = await alice.agent
      .post(`/api/v1/files/${stored.id}/verify`)
      .set('X-CSRF-Token', alice.csrf)
      .expect(200);
    expect(verified.body).toEqual({ ok: true, checkedBytes: 3000 });
    await alice.agent.delete(`/api/v1/files/${queued.id}`).set('X-CSRF-Token', alice.csrf).expect(204);
    expect(await world.files.findById(queued.id)).toBeNull();

    // A bearer token needs no CSRF token.
    const bearer = await request(server())
      .post(`/api/v1/files/${stored.id}/verify`)
      .set(alice.auth)
      .expect(200);
    expect(bearer.body).toEqual({ ok: true, checkedBytes: 3000 });
  });
});
