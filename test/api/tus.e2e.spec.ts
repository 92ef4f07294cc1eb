import { createHash, randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, sha1, sha256 } from '../support/bytes.js';
import {
  auditCount,
  downloadContent,
  rawRequest,
  tempFiles,
  waitForJob,
  waitForStatus,
  waitForStored,
} from '../support/client.js';
import { listObjects } from '../support/objects.js';
import { isOpaque, rawStaged, stagedLength, stagedPath } from '../support/staging.js';
import { TUS, tusRequests, tusUpload } from '../support/tus.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type StoreKind, type World } from '../support/world.js';

/**
 * Resumable uploads (tus 1.0.0) at /api/v1/tus: a third-party client (tus-js-client) stores files of
 * every size around the chunk boundaries, and the protocol's answers are the ones the specification
 * words (https://tus.io/protocols/resumable-upload), checked with raw requests.
 */

const CHUNK = MiB;

describe.each<StoreKind>(['local', 's3'])('tus-js-client uploads (%s store)', (kind) => {
  let world: World;
  let alice: TestUser;

  beforeAll(async () => {
    world = await createWorld({ store: kind, workers: 'in-process' });
    alice = await createUser(world.server, `alice_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  const sizes: Array<[string, number]> =
    kind === 'local'
      ? [
          ['0 B', 0],
          ['1 B', 1],
          ['chunk - 1', CHUNK - 1],
          ['chunk', CHUNK],
          ['chunk + 1', CHUNK + 1],
          ['50 MiB in 8 MiB chunks', 50 * MiB],
        ]
      : [
          ['chunk + 1', CHUNK + 1],
          ['12 MiB in 8 MiB chunks', 12 * MiB],
        ];

  it.each(sizes)(
    '%s: stored with the right digests, the download is identical',
    async (_, size) => {
      const body = randomBytes(size);
      const chunkSize = size > 8 * MiB ? 8 * MiB : CHUNK;
      const { id } = await tusUpload(world.base, alice, body, {
        chunkSize,
        metadata: { filename: `tus-${size}.bin`, filetype: 'application/octet-stream' },
      });
      const row = await waitForStored(world, id, { timeoutMs: 120_000 });
      expect(row).toMatchObject({
        size,
        sha1: sha1(body),
        sha256: sha256(body),
        filename: `tus-${size}.bin`,
      });
      const res = await downloadContent(world, alice, id);
      expect(res.status).toBe(200);
      expect(res.sha256).toBe(sha256(body));
      expect(await auditCount(world, id, 'upload.started')).toBe(1);
      expect(await auditCount(world, id, 'upload.accepted')).toBe(1);
      expect(await world.queue.getJobCounts('completed')).toMatchObject({ completed: expect.any(Number) });
      expect(await tempFiles(world.config)).not.toContain(id);
    },
    120_000,
  );

  it('checks the SHA-256 the client declared: a match is recorded as clientVerified, a mismatch fails as client-hash-mismatch and stores nothing', async () => {
    const body = randomBytes(CHUNK * 2 + 7);
    const right = await tusUpload(world.base, alice, body, {
      chunkSize: CHUNK,
      metadata: { filename: 'verified.bin', sha256: sha256(body) },
    });
    await waitForStored(world, right.id);
    const view = await request(world.server).get(`/api/v1/files/${right.id}`).set(alice.auth).expect(200);
    expect(view.body).toMatchObject({ clientSha256: sha256(body), clientVerified: true });

    const objectsBefore = await listObjects(world);
    const wrong = await tusUpload(world.base, alice, body, {
      chunkSize: CHUNK,
      metadata: { filename: 'altered.bin', sha256: sha256(Buffer.from('something else')) },
    });
    const failed = await waitForStatus(world, wrong.id, 'failed');
    expect(failed.error).toMatch(/^client-hash-mismatch: /);
    expect(failed.error).toContain(sha256(body));
    expect(await listObjects(world)).toEqual(objectsBefore);
    expect(await tempFiles(world.config)).not.toContain(wrong.id);
    // Permanent: one attempt, no retry.
    await waitForJob(world, wrong.id, 'failed');
    expect((await world.queue.getJob(wrong.id))!.attemptsMade).toBe(1);

    const malformed = await request(world.server)
      .post('/api/v1/tus')
      .set({
        ...alice.auth,
        ...TUS,
        'Upload-Length': '1',
        'Upload-Metadata': `sha256 ${Buffer.from('abc').toString('base64')}`,
      });
    expect(malformed.status).toBe(400);
    expect(malformed.body.message).toMatch(/64 hexadecimal/);
  });

  it('creation-with-upload: the first chunk travels with the POST', async () => {
    const body = randomBytes(CHUNK + 5);
    const { id } = await tusUpload(world.base, alice, body, {
      chunkSize: CHUNK,
      uploadDataDuringCreation: true,
    });
    const row = await waitForStored(world, id);
    expect(row.sha256).toBe(sha256(body));
  });
});

describe('the tus protocol, request by request', () => {
  let world: World;
  let alice: TestUser;
  let bob: TestUser;
  const LIMIT = 4 * MiB;

  beforeAll(async () => {
    world = await createWorld({ env: { MAX_FILE_SIZE: String(LIMIT), TUS_UPLOAD_EXPIRY: '1h' } });
    alice = await createUser(world.server, `alice_${world.id}`);
    bob = await createUser(world.server, `bob_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  const { create, patch, head } = tusRequests(() => world.server);

  it('OPTIONS lists the version, extensions, the size limit and the checksum algorithms, without Tus-Resumable', async () => {
    const res = await request(world.server).options('/api/v1/tus');
    expect(res.status).toBe(204);
    expect(res.headers['tus-version']).toBe('1.0.0');
    expect(res.headers['tus-extension']!.split(',')).toEqual(
      expect.arrayContaining(['creation', 'creation-with-upload', 'termination', 'expiration', 'checksum']),
    );
    expect(res.headers['tus-max-size']).toBe(String(LIMIT));
    expect(res.headers['tus-checksum-algorithm']!.split(',')).toEqual(
      expect.arrayContaining(['sha1', 'sha256']),
    );
    expect(res.headers['tus-resumable']).toBeUndefined();
  });

  it('answers 412 with Tus-Version when Tus-Resumable is missing or another version, before anything else', async () => {
    for (const version of [undefined, '0.2.2', '2.0.0']) {
      const res = await request(world.server)
        .post('/api/v1/tus')
        .set({ ...alice.auth, 'Upload-Length': '10', ...(version ? { 'Tus-Resumable': version } : {}) });
      expect(res.status).toBe(412);
      expect(res.headers['tus-version']).toBe('1.0.0');
      expect(res.headers['tus-resumable']).toBe('1.0.0');
      expect(res.body.message).toMatch(/Tus-Resumable: 1\.0\.0/);
    }
    // Unauthenticated requests carry the header too.
    const anonymous = await request(world.server)
      .post('/api/v1/tus')
      .set({ ...TUS, 'Upload-Length': '1' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['tus-resumable']).toBe('1.0.0');
  });

  it('creates an upload: 201, Location, Upload-Expires; HEAD has offset, length, metadata and no-store', async () => {
    const filename = Buffer.from('Quarterly "final" report.txt').toString('base64');
    const res = await request(world.server)
      .post('/api/v1/tus')
      .set({
        ...alice.auth,
        ...TUS,
        'Upload-Length': '100',
        'Upload-Metadata': `filename ${filename},filetype ${Buffer.from('text/plain').toString('base64')}`,
      });
    expect(res.status).toBe(201);
    expect(res.headers.location).toMatch(/^\/api\/v1\/tus\/[0-9a-f-]{36}$/);
    expect(res.headers['tus-resumable']).toBe('1.0.0');
    const expires = Date.parse(res.headers['upload-expires']!);
    expect(expires - Date.now()).toBeGreaterThan(59 * 60_000);
    expect(expires - Date.now()).toBeLessThanOrEqual(60 * 60_000);
    const id = res.headers.location!.split('/').pop()!;

    const h = await head(alice, id);
    expect(h.status).toBe(200);
    expect(h.headers['upload-offset']).toBe('0');
    expect(h.headers['upload-length']).toBe('100');
    expect(h.headers['cache-control']).toBe('no-store');
    expect(h.headers['upload-metadata']).toContain(`filename ${filename}`);
    const row = (await world.files.findById(id))!;
    expect(row).toMatchObject({
      status: 'receiving',
      filename: 'Quarterly "final" report.txt',
      contentType: 'text/plain',
    });
  });

  it('PATCH appends at the current offset (204 + Upload-Offset); any other offset is 409, another type 415', async () => {
    const id = await create(alice, 10);
    const first = await patch(alice, id, 0, Buffer.from('hello'));
    expect(first.status).toBe(204);
    expect(first.headers['upload-offset']).toBe('5');
    expect(first.headers['upload-expires']).toBeDefined();

    const stale = await patch(alice, id, 0, Buffer.from('again'));
    expect(stale.status).toBe(409);
    expect(stale.body.message).toMatch(/current offset 5/);
    const ahead = await patch(alice, id, 7, Buffer.from('xyz'));
    expect(ahead.status).toBe(409);

    const wrongType = await patch(alice, id, 5, Buffer.from('world'), {
      'Content-Type': 'application/octet-stream',
    });
    expect(wrongType.status).toBe(415);
    const noOffset = await request(world.server)
      .patch(`/api/v1/tus/${id}`)
      .set({ ...alice.auth, ...TUS, 'Content-Type': 'application/offset+octet-stream' })
      .send(Buffer.from('world'));
    expect(noOffset.status).toBe(400);
    expect((await head(alice, id)).headers['upload-offset']).toBe('5');

    const last = await patch(alice, id, 5, Buffer.from('world'));
    expect(last.status).toBe(204);
    expect(last.headers['upload-offset']).toBe('10');
    expect(last.headers['upload-expires']).toBeUndefined();
    expect((await world.files.findById(id))!.status).toBe('queued');
    expect(await world.queue.getJob(id)).toBeDefined();

    // The answer to the final PATCH got lost: the client sends it again with nothing left. Still one job.
    const again = await patch(alice, id, 10, Buffer.alloc(0));
    expect(again.status).toBe(204);
    expect(again.headers['upload-offset']).toBe('10');
    expect(await world.queue.getJobCounts('waiting', 'prioritized', 'delayed')).toSatisfy(
      (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0) >= 1,
    );
    expect(
      (await world.queue.getJobs(['waiting', 'prioritized', 'delayed'])).filter((j) => j.id === id),
    ).toHaveLength(1);
    expect(await auditCount(world, id, 'upload.accepted')).toBe(1);
    // A complete upload takes no more bytes.
    expect((await patch(alice, id, 10, Buffer.from('!'))).status).toBe(409);
  });

  it('Upload-Checksum: a matching chunk is kept, a mismatch is 460 and the offset does not move, an unknown algorithm 400', async () => {
    const id = await create(alice, 8);
    const good = Buffer.from('abcd');
    const digest = (alg: string, data: Buffer) => createHash(alg).update(data).digest('base64');
    const ok = await patch(alice, id, 0, good, { 'Upload-Checksum': `sha256 ${digest('sha256', good)}` });
    expect(ok.status).toBe(204);
    expect(ok.headers['upload-offset']).toBe('4');

    const bad = await patch(alice, id, 4, Buffer.from('efgh'), {
      'Upload-Checksum': `sha1 ${digest('sha1', Buffer.from('EFGH'))}`,
    });
    expect(bad.status).toBe(460);
    expect(bad.body.message).toMatch(/discarded/);
    expect((await head(alice, id)).headers['upload-offset']).toBe('4');
    expect(await stagedLength(world.config, id)).toBe(4);

    const unknown = await patch(alice, id, 4, Buffer.from('efgh'), { 'Upload-Checksum': 'crc32 AAAAAA==' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toMatch(/sha1, sha256/);
    const malformed = await patch(alice, id, 4, Buffer.from('efgh'), { 'Upload-Checksum': 'sha1' });
    expect(malformed.status).toBe(400);
    expect((await head(alice, id)).headers['upload-offset']).toBe('4');

    const rest = Buffer.from('efgh');
    const done = await patch(alice, id, 4, rest, { 'Upload-Checksum': `sha1 ${digest('sha1', rest)}` });
    expect(done.status).toBe(204);
    expect(done.headers['upload-offset']).toBe('8');
  });

  it('refuses an Upload-Length over the limit with 413 and malformed creation headers with 400, creating nothing', async () => {
    const before = await tempFiles(world.config);
    const over = await request(world.server)
      .post('/api/v1/tus')
      .set({ ...alice.auth, ...TUS, 'Upload-Length': String(LIMIT + 1) });
    expect(over.status).toBe(413);
    expect(over.body.message).toMatch(/limit/);
    for (const length of ['-1', 'abc', '1.5', '']) {
      const res = await request(world.server)
        .post('/api/v1/tus')
        .set({ ...alice.auth, ...TUS, 'Upload-Length': length });
      expect(res.status, length).toBe(400);
    }
    const deferred = await request(world.server)
      .post('/api/v1/tus')
      .set({ ...alice.auth, ...TUS, 'Upload-Defer-Length': '1' });
    expect(deferred.status).toBe(400);
    const badMeta = await request(world.server)
      .post('/api/v1/tus')
      .set({ ...alice.auth, ...TUS, 'Upload-Length': '1', 'Upload-Metadata': 'filename not*base64' });
    expect(badMeta.status).toBe(400);
    expect(await tempFiles(world.config)).toEqual(before);
  });

  it('refuses a blocked name or declared type with 415 before anything is created', async () => {
    const before = await tempFiles(world.config);
    const b64 = (v: string) => Buffer.from(v).toString('base64');
    for (const metadata of [
      `filename ${b64('setup.exe')}`,
      `filename ${b64('a.bin')},filetype ${b64('application/x-msdownload')}`,
    ]) {
      const res = await request(world.server)
        .post('/api/v1/tus')
        .set({ ...alice.auth, ...TUS, 'Upload-Length': '10', 'Upload-Metadata': metadata });
      expect(res.status).toBe(415);
      expect(res.body.message).toMatch(/BLOCKED_TYPES|blocked/);
    }
    expect(await tempFiles(world.config)).toEqual(before);
  });

  it('a chunk past Upload-Length is 413 and nothing of it is kept', async () => {
    const id = await create(alice, 4);
    const res = await patch(alice, id, 0, Buffer.from('too long'));
    expect(res.status).toBe(413);
    expect((await head(alice, id)).headers['upload-offset']).toBe('0');
  });

  it("another user's upload URL answers 404 to HEAD, PATCH and DELETE, like a random one", async () => {
    const id = await create(alice, 10);
    expect((await head(bob, id)).status).toBe(404);
    expect((await patch(bob, id, 0, Buffer.from('x'))).status).toBe(404);
    const del = await request(world.server)
      .delete(`/api/v1/tus/${id}`)
      .set({ ...bob.auth, ...TUS });
    expect(del.status).toBe(404);
    expect((await head(alice, '3f1c2a9e-0b4d-4c8e-9f7a-123456789abc')).status).toBe(404);
    expect((await head(alice, 'not-a-uuid')).status).toBe(404);
    expect((await head(alice, id)).headers['upload-offset']).toBe('0');
  });

  it('DELETE terminates an unfinished upload: 204, no row, no staging file', async () => {
    const id = await create(alice, 10);
    await patch(alice, id, 0, Buffer.from('abc')).expect(204);
    const res = await request(world.server)
      .delete(`/api/v1/tus/${id}`)
      .set({ ...alice.auth, ...TUS });
    expect(res.status).toBe(204);
    expect(res.headers['tus-resumable']).toBe('1.0.0');
    expect(await world.files.findById(id)).toBeNull();
    expect(await tempFiles(world.config)).not.toContain(id);
    expect((await head(alice, id)).status).toBe(404);
    expect(await auditCount(world, id, 'upload.cancelled')).toBe(1);
  });

  it('lists an unfinished upload as receiving with how much has arrived; deleting the file cancels it', async () => {
    const id = await create(alice, 10);
    await patch(alice, id, 0, Buffer.from('abcd')).expect(204);
    const listed = await request(world.server).get('/api/v1/files').set(alice.auth).expect(200);
    const row = listed.body.items.find((item: { id: string }) => item.id === id);
    expect(row).toMatchObject({ status: 'receiving', size: 10, receivedBytes: 4 });
    const one = await request(world.server).get(`/api/v1/files/${id}`).set(alice.auth).expect(200);
    expect(one.body).toMatchObject({ status: 'receiving', receivedBytes: 4 });
    // Nobody else sees it, and a stored file carries no receivedBytes.
    await request(world.server).get(`/api/v1/files/${id}`).set(bob.auth).expect(404);
    await request(world.server).delete(`/api/v1/files/${id}`).set(alice.auth).expect(204);
    expect(await world.files.findById(id)).toBeNull();
    expect(await tempFiles(world.config)).not.toContain(id);
    expect((await head(alice, id)).status).toBe(404);
  });

  it('keeps an unfinished upload encrypted in staging: no plaintext marker, 0600', async () => {
    const marker = randomBytes(64);
    const body = Buffer.concat(Array.from({ length: 3 * 1024 }, () => marker));
    const id = await create(alice, body.length * 2);
    await patch(alice, id, 0, body).expect(204);
    const raw = await rawStaged(world.config, id);
    expect(isOpaque(raw, marker)).toBe(true);
    expect((await stat(stagedPath(world.config, id))).mode & 0o777).toBe(0o600);
    expect((await head(alice, id)).headers['upload-offset']).toBe(String(body.length));
  });

  it('two PATCHes at once: the second gets 423 while the first writes, and the bytes never interleave', async () => {
    const id = await create(alice, 2 * MiB);
    const first = http.request(`${world.base}/api/v1/tus/${id}`, {
      method: 'PATCH',
      headers: {
        ...alice.auth,
        ...TUS,
        'Upload-Offset': '0',
        'Content-Type': 'application/offset+octet-stream',
        'Content-Length': String(MiB),
      },
    });
    const firstAnswer = new Promise<number>((resolve, reject) => {
      first.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      first.on('error', reject);
    });
    const half = randomBytes(MiB);
    first.write(half.subarray(0, MiB / 2));
    // Wait until the first request holds the lock (its writer has opened the staging file).
    await new Promise((r) => setTimeout(r, 300));
    const second = await patch(alice, id, 0, randomBytes(1000));
    expect(second.status).toBe(423);
    first.end(half.subarray(MiB / 2));
    expect(await firstAnswer).toBe(204);
    expect((await head(alice, id)).headers['upload-offset']).toBe(String(MiB));
  });
});

describe('quotas', () => {
  let world: World;
  let carol: TestUser;

  beforeAll(async () => {
    world = await createWorld({ env: { QUOTA_BYTES: '1MiB' } });
    carol = await createUser(world.server, `carol_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  it("reserves an unfinished upload's size: the next upload over the remaining quota is 413, creating nothing", async () => {
    const first = await request(world.server)
      .post('/api/v1/tus')
      .set({ ...carol.auth, ...TUS, 'Upload-Length': String(MiB - 10) });
    expect(first.status).toBe(201);
    const second = await request(world.server)
      .post('/api/v1/tus')
      .set({ ...carol.auth, ...TUS, 'Upload-Length': '11' });
    expect(second.status).toBe(413);
    expect(second.body.message).toMatch(/quota/);
    expect(await tempFiles(world.config)).toHaveLength(1);
  });
});

describe('expiry', () => {
  let world: World;
  let alice: TestUser;

  beforeAll(async () => {
    world = await createWorld({ env: { TUS_UPLOAD_EXPIRY: '1s' } });
    alice = await createUser(world.server, `alice_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  it('an expired upload answers 410 and is removed with its staging; the sweep removes untouched ones', async () => {
    const create = () =>
      request(world.server)
        .post('/api/v1/tus')
        .set({ ...alice.auth, ...TUS, 'Upload-Length': '10' })
        .expect(201)
        .then((res) => res.headers.location!.split('/').pop()!);
    const touched = await create();
    const untouched = await create();
    await new Promise((r) => setTimeout(r, 1_100));
    const res = await request(world.server)
      .head(`/api/v1/tus/${touched}`)
      .set({ ...alice.auth, ...TUS });
    expect(res.status).toBe(410);
    expect(await world.files.findById(touched)).toBeNull();
    expect(await tempFiles(world.config)).not.toContain(touched);

    const { TusService } = await import('../../apps/gateway/src/uploads/tus/tus.service.js');
    expect(await world.app.get(TusService).sweepExpired()).toEqual([untouched]);
    expect(await world.files.findById(untouched)).toBeNull();
    expect(await tempFiles(world.config)).toEqual([]);
    expect(await auditCount(world, untouched, 'upload.expired')).toBe(1);
  });
});

describe('resuming on another gateway process after the first one died', () => {
  let world: World;
  let alice: TestUser;

  beforeAll(async () => {
    world = await createWorld({ gateway: 'process', gateways: 2, workers: 1 });
    alice = await createUser(world.urls[0]!, `alice_${world.id}`);
  }, 90_000);

  afterAll(async () => {
    await world?.close();
  });

  it('an upload cut mid-chunk on gateway 1, which is then killed, resumes on gateway 2 from its offset and is stored once', async () => {
    const body = randomBytes(20 * MiB + 123);
    const first = await tusUpload(world.urls[0]!, alice, body, {
      chunkSize: 4 * MiB,
      abortWhileSending: 10 * MiB,
    });
    expect(first.aborted).toBe(true);
    world.gatewayProcesses[0]!.signal('SIGKILL');
    await world.gatewayProcesses[0]!.exited;

    const url = `${world.urls[1]}/api/v1/tus/${first.id}`;
    const state = await request(world.urls[1]!)
      .head(`/api/v1/tus/${first.id}`)
      .set({ ...alice.auth, ...TUS });
    expect(state.status).toBe(200);
    const offset = Number(state.headers['upload-offset']);
    expect(offset).toBeGreaterThanOrEqual(8 * MiB);
    expect(offset).toBeLessThan(body.length);

    let resumedFrom: number | undefined;
    const second = await tusUpload(world.urls[1]!, alice, body, {
      chunkSize: 4 * MiB,
      uploadUrl: url,
      onProgress: (sent) => {
        resumedFrom ??= sent;
      },
    });
    expect(second).toMatchObject({ id: first.id, aborted: false });
    expect(resumedFrom).toBeGreaterThanOrEqual(offset);
    const row = await waitForStored(world, first.id, { timeoutMs: 60_000 });
    expect(row.sha256).toBe(sha256(body));
    const res = await rawRequest(`${world.urls[1]}/api/v1/files/${first.id}/content`, {
      headers: alice.auth,
    });
    expect(res.sha256).toBe(sha256(body));
    expect(await auditCount(world, first.id, 'upload.accepted')).toBe(1);
  }, 120_000);
});
