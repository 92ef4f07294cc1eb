import { createHash, randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectKeyFor } from '#common';
import {
  auditCount,
  rawRequest,
  upload,
  userId,
  waitFor,
  waitForStatus,
  waitForStored,
} from '../support/client.js';
import { postMultipart } from '../support/multipart.js';
import { listObjects, objectExists, readObject, writeObject } from '../support/objects.js';
import type { SecretsManagerFake } from '../support/secrets-manager-fake.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * File versions on the real gateway and crypto worker (docs/architecture.md, "File versions";
 * docs/security.md item 38): v1, v2, v3 each download byte-identical; a restore is a new version identical
 * to the old one and shares its object; deleting versions removes exactly the objects no version uses; a
 * failed new version leaves the current one as it was; another user's ids answer 404; a share link serves
 * the current version; tus uploads a version with Upload-Metadata fileId.
 */

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const TUS = { 'Tus-Resumable': '1.0.0' };

interface VersionItem {
  version: number;
  current: boolean;
  size: number;
  sha256: string;
  status: string;
  restoredFrom?: number;
}

describe('file versions', () => {
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

  /** POST /api/v1/files/:id/versions; waits until the version is current; returns the upload row id. */
  async function newVersion(user: TestUser, fileId: string, body: Buffer, filename = 'report.bin') {
    const before = (await world.files.findById(fileId))!.version;
    const res = await postMultipart(`${world.base}/api/v1/files/${fileId}/versions`, [{ filename, body }], {
      headers: user.auth,
    });
    expect(res.status, res.body).toBe(202);
    const accepted = JSON.parse(res.body) as { fileId: string; upload: { id: string; status: string } };
    expect(accepted).toMatchObject({ fileId, upload: { status: 'queued' } });
    await waitFor('the new version to be current', async () => {
      const row = await world.files.findById(fileId);
      return row && row.version > before && row.status === 'stored';
    });
    return accepted.upload.id;
  }

  const versionContent = (user: TestUser, fileId: string, n: number, headers: Record<string, string> = {}) =>
    rawRequest(`${world.base}/api/v1/files/${fileId}/versions/${n}/content`, {
      headers: { ...user.auth, ...headers },
    });
  const currentContent = (user: TestUser, fileId: string) =>
    rawRequest(`${world.base}/api/v1/files/${fileId}/content`, { headers: user.auth });
  const listVersions = async (user: TestUser, fileId: string) =>
    (await request(world.server).get(`/api/v1/files/${fileId}/versions`).set(user.auth).expect(200)).body as {
      current: number;
      items: VersionItem[];
      uploads: Array<{ id: string; status: string; error?: string }>;
    };

  async function firstVersion(user: TestUser, body: Buffer, filename = 'report.bin') {
    const [file] = await upload(world, user, [{ filename, body }]);
    await waitForStored(world, file!.id);
    return file!.id;
  }

  it('v1, v2, v3 each download byte-identical; the file shows the current version and the count', async () => {
    const bodies = [randomBytes(3000), randomBytes(2 * 1024 * 1024 + 7), Buffer.from('third version\n')];
    const id = await firstVersion(alice, bodies[0]!);
    const v1 = await request(world.server).get(`/api/v1/files/${id}`).set(alice.auth).expect(200);
    expect(v1.body).toMatchObject({ version: 1, versionCount: 1, sha256: sha256(bodies[0]!) });
    const uploadRow2 = await newVersion(alice, id, bodies[1]!);
    await newVersion(alice, id, bodies[2]!);

    const file = await request(world.server).get(`/api/v1/files/${id}`).set(alice.auth).expect(200);
    expect(file.body).toMatchObject({
      id,
      filename: 'report.bin',
      status: 'stored',
      version: 3,
      versionCount: 3,
      size: bodies[2]!.length,
      sha256: sha256(bodies[2]!),
    });
    // The upload rows of versions 2 and 3 are folded into the file: one file in the list, no row left.
    expect(await world.files.findById(uploadRow2)).toBeNull();
    // Its job (the id the 202 gave) still answers: completed, for the file, as version 2.
    const job = await request(world.server).get(`/api/v1/jobs/${uploadRow2}`).set(alice.auth).expect(200);
    expect(job.body).toMatchObject({
      id: uploadRow2,
      fileId: id,
      status: 'completed',
      progress: { stage: 'stored', bytesDone: bodies[1]!.length, bytesTotal: bodies[1]!.length },
    });
    await request(world.server).get(`/api/v1/jobs/${uploadRow2}`).set(bob.auth).expect(404);
    const list = await request(world.server).get('/api/v1/files').set(alice.auth).expect(200);
    expect(list.body.items.filter((f: { filename: string }) => f.filename === 'report.bin')).toHaveLength(1);

    const versions = await listVersions(alice, id);
    expect(versions.current).toBe(3);
    expect(versions.items.map((v) => [v.version, v.current, v.size, v.sha256])).toEqual([
      [3, true, bodies[2]!.length, sha256(bodies[2]!)],
      [2, false, bodies[1]!.length, sha256(bodies[1]!)],
      [1, false, bodies[0]!.length, sha256(bodies[0]!)],
    ]);
    for (const [i, body] of bodies.entries()) {
      const got = await versionContent(alice, id, i + 1);
      expect(got.status).toBe(200);
      expect(got.complete).toBe(true);
      expect(got.sha256).toBe(sha256(body));
      expect(got.headers['content-disposition']).toContain('report.bin');
      expect(got.headers.etag).toBe(`"sha256-${sha256(body)}"`);
    }
    const current = await currentContent(alice, id);
    expect(current.sha256).toBe(sha256(bodies[2]!));
    // Range on an older version: only the needed segments, verified.
    const ranged = await versionContent(alice, id, 2, { Range: 'bytes=1048570-1048600' });
    expect(ranged.status).toBe(206);
    expect(ranged.body.equals(bodies[1]!.subarray(1048570, 1048601))).toBe(true);
    expect(ranged.headers['content-range']).toBe(`bytes 1048570-1048600/${bodies[1]!.length}`);
    // Each version is its own object: v1 under the file's id, v2 under its upload row's id.
    expect(await objectExists(world, id)).toBe(true);
    expect(await objectExists(world, uploadRow2)).toBe(true);
    expect(await auditCount(world, id, 'file.stored')).toBe(3);
  });

  it('restore v1 makes v4 identical to v1 sharing its object; deleting v2 removes its object; the current is kept', async () => {
    const bodies = [randomBytes(10_000), randomBytes(20_000), randomBytes(30_000)];
    const id = await firstVersion(alice, bodies[0]!);
    const v2Object = await newVersion(alice, id, bodies[1]!);
    const v3Object = await newVersion(alice, id, bodies[2]!);

    const restored = await request(world.server)
      .post(`/api/v1/files/${id}/versions/1/restore`)
      .set(alice.auth)
      .expect(201);
    expect(restored.body).toEqual({ fileId: id, version: 4, restoredFrom: 1 });
    const file = (await world.files.findById(id))!;
    expect(file).toMatchObject({ version: 4, versionCount: 4, status: 'stored', sha256: sha256(bodies[0]!) });
    // No re-encryption: the same object and wrapped key as v1.
    expect(file.objectKey).toBe(objectKeyFor(id));
    expect((await versionContent(alice, id, 4)).sha256).toBe(sha256(bodies[0]!));
    expect((await currentContent(alice, id)).sha256).toBe(sha256(bodies[0]!));
    const verify = await request(world.server).post(`/api/v1/files/${id}/verify`).set(alice.auth).expect(200);
    expect(verify.body).toEqual({ ok: true, checkedBytes: bodies[0]!.length });
    expect((await listVersions(alice, id)).items[0]).toMatchObject({
      version: 4,
      current: true,
      restoredFrom: 1,
    });
    expect(await auditCount(world, id, 'file.version_restored')).toBe(1);

    // The current version cannot be deleted.
    const refused = await request(world.server)
      .delete(`/api/v1/files/${id}/versions/4`)
      .set(alice.auth)
      .expect(409);
    expect(refused.body.message).toMatch(/current version/);

    await request(world.server).delete(`/api/v1/files/${id}/versions/2`).set(alice.auth).expect(204);
    expect(await objectExists(world, v2Object)).toBe(false);
    await request(world.server).get(`/api/v1/files/${id}/versions/2/content`).set(alice.auth).expect(404);
    await request(world.server).delete(`/api/v1/files/${id}/versions/2`).set(alice.auth).expect(404);

    // v1 shares its object with the current v4: deleting v1 keeps the object, v4 still downloads.
    await request(world.server).delete(`/api/v1/files/${id}/versions/1`).set(alice.auth).expect(204);
    expect(await objectExists(world, id)).toBe(true);
    expect((await currentContent(alice, id)).sha256).toBe(sha256(bodies[0]!));
    const events: Array<{ details: Record<string, unknown> }> = await world.dataSource.query(
      "SELECT details FROM audit_events WHERE file_id = $1 AND action = 'file.version_deleted' ORDER BY seq",
      [id],
    );
    expect(events.map((e) => [e.details.version, e.details.objectDeleted, e.details.reason])).toEqual([
      [2, true, 'user'],
      [1, false, 'user'],
    ]);
    // The events name the file as it was (the Activity page shows them after the file is gone).
    // (Its name as stored: an earlier test's report.bin made this one "report (2).bin", keep-both.)
    expect(events.every((e) => e.details.filename === file.filename)).toBe(true);
    expect(file.filename).toMatch(/^report( \(\d+\))?\.bin$/);
    expect((await listVersions(alice, id)).items.map((v) => v.version)).toEqual([4, 3]);
    expect((await world.files.findById(id))!.versionCount).toBe(2);

    // Deleting the file removes every version's object.
    await request(world.server).delete(`/api/v1/files/${id}`).set(alice.auth).expect(204);
    expect(await objectExists(world, id)).toBe(false);
    expect(await objectExists(world, v3Object)).toBe(false);
    const left = await world.dataSource.query('SELECT 1 FROM file_versions WHERE file_id = $1', [id]);
    expect(left).toEqual([]);
  });

  it("another user's file and version ids answer 404; malformed version numbers too", async () => {
    const id = await firstVersion(alice, randomBytes(100));
    await newVersion(alice, id, randomBytes(200));
    const paths: Array<[string, string]> = [
      ['get', `/api/v1/files/${id}/versions`],
      ['get', `/api/v1/files/${id}/versions/1/content`],
      ['post', `/api/v1/files/${id}/versions/1/restore`],
      ['delete', `/api/v1/files/${id}/versions/1`],
    ];
    for (const [method, path] of paths) {
      const res = await (request(world.server) as unknown as Record<string, (p: string) => request.Test>)[
        method
      ]!(path).set(bob.auth);
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    const bobUpload = await postMultipart(
      `${world.base}/api/v1/files/${id}/versions`,
      [{ filename: 'evil.bin', body: randomBytes(10) }],
      { headers: bob.auth },
    );
    expect(bobUpload.status).toBe(404);
    for (const n of ['0', '99', 'abc', '-1', '1.5', '99999999999']) {
      await request(world.server)
        .get(`/api/v1/files/${id}/versions/${n}/content`)
        .set(alice.auth)
        .expect(404);
      await request(world.server)
        .post(`/api/v1/files/${id}/versions/${n}/restore`)
        .set(alice.auth)
        .expect(404);
    }
    // Nothing of bob's attempt was kept, and alice's file is unchanged.
    expect((await world.files.findById(id))!.version).toBe(2);
    expect(await world.files.uploadsOfVersions(id)).toEqual([]);
  });

  it('a new version that fails (client hash mismatch) leaves the current version intact', async () => {
    const body = randomBytes(5000);
    const id = await firstVersion(alice, body);
    const res = await request(world.server)
      .post(`/api/v1/files/${id}/versions`)
      .set(alice.auth)
      .field('sha256', '0'.repeat(64))
      .attach('file', randomBytes(6000), 'report.bin')
      .expect(202);
    const uploadId = (res.body as { upload: { id: string } }).upload.id;
    await waitForStatus(world, uploadId, 'failed');
    const file = (await world.files.findById(id))!;
    expect(file).toMatchObject({ status: 'stored', version: 1, versionCount: 1, sha256: sha256(body) });
    expect((await currentContent(alice, id)).sha256).toBe(sha256(body));
    const versions = await listVersions(alice, id);
    expect(versions.items.map((v) => v.version)).toEqual([1]);
    expect(versions.uploads).toEqual([
      expect.objectContaining({
        id: uploadId,
        status: 'failed',
        error: expect.stringMatching(/client-hash-mismatch/),
      }),
    ]);
    // Its job is listed and named after the file it is for; another user sees neither.
    const job = await request(world.server).get(`/api/v1/jobs/${uploadId}`).set(alice.auth).expect(200);
    expect(job.body).toMatchObject({ id: uploadId, fileId: id, status: 'failed' });
    expect(job.body.error).toMatch(/client-hash-mismatch/);
    const jobs = await request(world.server).get('/api/v1/jobs?limit=100').set(alice.auth).expect(200);
    expect(jobs.body.items).toContainEqual(expect.objectContaining({ id: uploadId, fileId: id }));
    await request(world.server).get(`/api/v1/jobs/${uploadId}`).set(bob.auth).expect(404);
    // More than one file part is refused and leaves nothing.
    const two = await postMultipart(
      `${world.base}/api/v1/files/${id}/versions`,
      [
        { filename: 'a.bin', body: randomBytes(10) },
        { filename: 'b.bin', body: randomBytes(10) },
      ],
      { headers: alice.auth },
    );
    expect(two.status).toBe(400);
    expect(JSON.parse(two.body).message).toMatch(/one file/);
    expect((await world.files.uploadsOfVersions(id)).map((u) => u.id)).toEqual([uploadId]);
  });

  it('a share link follows the file: it serves the current version, across new versions and a restore', async () => {
    const v1 = Buffer.from('shared, version one\n');
    const v2 = Buffer.from('shared, version two, longer\n');
    const id = await firstVersion(alice, v1, 'shared.txt');
    const share = await request(world.server)
      .post(`/api/v1/files/${id}/shares`)
      .set(alice.auth)
      .send({})
      .expect(201);
    const link = `${share.body.url as string}/content`;
    expect((await rawRequest(link)).sha256).toBe(sha256(v1));
    await newVersion(alice, id, v2, 'shared.txt');
    const after = await rawRequest(link);
    expect(after.status).toBe(200);
    expect(after.sha256).toBe(sha256(v2));
    await request(world.server).post(`/api/v1/files/${id}/versions/1/restore`).set(alice.auth).expect(201);
    expect((await rawRequest(link)).sha256).toBe(sha256(v1));
  });

  it('tus uploads a new version with Upload-Metadata fileId; a foreign fileId is 404', async () => {
    const id = await firstVersion(alice, randomBytes(1000), 'resumable.bin');
    const body = randomBytes(70_000);
    const meta = (fileId: string) =>
      `filename ${Buffer.from('resumable.bin').toString('base64')},fileId ${Buffer.from(fileId).toString('base64')}`;
    await request(world.server)
      .post('/api/v1/tus')
      .set({ ...bob.auth, ...TUS, 'Upload-Length': String(body.length), 'Upload-Metadata': meta(id) })
      .expect(404);
    const created = await request(world.server)
      .post('/api/v1/tus')
      .set({ ...alice.auth, ...TUS, 'Upload-Length': String(body.length), 'Upload-Metadata': meta(id) });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const uploadId = created.headers.location!.split('/').pop()!;
    // While it arrives, the previous version stays current and the upload is not a file of its own.
    expect((await world.files.findById(id))!.version).toBe(1);
    const list = await request(world.server).get('/api/v1/files').set(alice.auth).expect(200);
    expect(list.body.items.map((f: { id: string }) => f.id)).not.toContain(uploadId);
    await request(world.server)
      .patch(`/api/v1/tus/${uploadId}`)
      .set({ ...alice.auth, ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' })
      .send(body)
      .expect(204);
    await waitFor('version 2 to be current', async () => (await world.files.findById(id))!.version === 2);
    expect((await versionContent(alice, id, 2)).sha256).toBe(sha256(body));
    expect((await currentContent(alice, id)).sha256).toBe(sha256(body));
  });

  it('a tampered older version fails its download (502) and is marked corrupt; the current version is untouched', async () => {
    const v1 = randomBytes(4000);
    const v2 = randomBytes(5000);
    const id = await firstVersion(alice, v1);
    await newVersion(alice, id, v2);
    const bytes = await readObject(world, id);
    bytes[bytes.length - 20]! ^= 0x01;
    await writeObject(world, id, bytes);
    const res = await versionContent(alice, id, 1);
    expect([502, 0]).toContain(res.status);
    expect(res.complete && res.sha256 === sha256(v1)).toBe(false);
    await waitFor(
      'v1 marked corrupt',
      async () => (await listVersions(alice, id)).items[1]!.status === 'corrupt',
    );
    expect((await world.files.findById(id))!).toMatchObject({ status: 'stored', version: 2 });
    expect((await currentContent(alice, id)).sha256).toBe(sha256(v2));
    // A corrupt version cannot be restored.
    await request(world.server).post(`/api/v1/files/${id}/versions/1/restore`).set(alice.auth).expect(409);
    expect(await auditCount(world, id, 'file.corrupt')).toBe(1);
  });

  it('a version cannot be uploaded before the first one is stored (409)', async () => {
    const [file] = await upload(world, alice, [{ filename: 'x.bin', body: randomBytes(10) }]);
    await world.dataSource.query("UPDATE files SET status = 'failed' WHERE id = $1", [file!.id]);
    const res = await postMultipart(
      `${world.base}/api/v1/files/${file!.id}/versions`,
      [{ filename: 'x.bin', body: randomBytes(10) }],
      { headers: alice.auth },
    );
    expect(res.status).toBe(409);
    expect(await userId(world, alice)).toBeTruthy();
  });
});

describe('version retention and quotas', () => {
  let world: World;
  let alice: TestUser;

  beforeAll(async () => {
    world = await createWorld({
      workers: 'in-process',
      env: {
        VERSIONS_KEEP: '2',
        VERSIONS_MAX_AGE: '1d',
        QUOTA_BYTES: '200000',
        VERSIONS_PRUNE_INTERVAL: '1h',
      },
    });
    alice = await createUser(world.server, `alice_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  async function postVersion(fileId: string, body: Buffer) {
    return postMultipart(`${world.base}/api/v1/files/${fileId}/versions`, [{ filename: 'r.bin', body }], {
      headers: alice.auth,
    });
  }

  it('keeps the newest VERSIONS_KEEP versions: older ones, their objects and keys go, audited', async () => {
    const [file] = await upload(world, alice, [{ filename: 'r.bin', body: randomBytes(1000) }]);
    const id = file!.id;
    await waitForStored(world, id);
    const objects = [id];
    for (let n = 2; n <= 4; n++) {
      const res = await postVersion(id, randomBytes(1000 + n));
      expect(res.status).toBe(202);
      objects.push(JSON.parse(res.body).upload.id);
      await waitFor(`version ${n}`, async () => (await world.files.findById(id))!.version === n);
    }
    await waitFor('retention to keep two versions', async () => {
      const rows = await world.dataSource.query(
        'SELECT version FROM file_versions WHERE file_id = $1 ORDER BY version',
        [id],
      );
      return rows.map((r: { version: number }) => r.version).join() === '3,4';
    });
    expect((await world.files.findById(id))!.versionCount).toBe(2);
    expect(await objectExists(world, objects[0]!)).toBe(false);
    expect(await objectExists(world, objects[1]!)).toBe(false);
    expect(await objectExists(world, objects[2]!)).toBe(true);
    expect(await objectExists(world, objects[3]!)).toBe(true);
    const events: Array<{ details: Record<string, unknown> }> = await world.dataSource.query(
      "SELECT details FROM audit_events WHERE file_id = $1 AND action = 'file.version_deleted' ORDER BY seq",
      [id],
    );
    expect(events.map((e) => [e.details.version, e.details.reason])).toEqual([
      [1, 'retention:keep'],
      [2, 'retention:keep'],
    ]);
    // One scheduler for the installation, whatever the number of replicas.
    const schedulers = await world.queue.getJobSchedulers();
    expect(schedulers.filter((s) => s.key === 'prune-versions')).toHaveLength(1);
    await request(world.server).delete(`/api/v1/files/${id}`).set(alice.auth).expect(204);
  });

  it('VERSIONS_MAX_AGE: a scheduled run removes older versions past the age, never the current one', async () => {
    const [file] = await upload(world, alice, [{ filename: 'old.bin', body: randomBytes(500) }]);
    const id = file!.id;
    await waitForStored(world, id);
    expect((await postVersion(id, randomBytes(600))).status).toBe(202);
    await waitFor('version 2', async () => (await world.files.findById(id))!.version === 2);
    // Both versions are two days old now: v1 is past VERSIONS_MAX_AGE, v2 is current and stays.
    await world.dataSource.query(
      "UPDATE file_versions SET created_at = now() - interval '2 days' WHERE file_id = $1",
      [id],
    );
    // What the scheduler produces every VERSIONS_PRUNE_INTERVAL: a run over all files.
    await world.queue.add('prune-versions', {}, { jobId: `test-prune-${id}` });
    await waitFor('v1 removed by age', async () => {
      const rows = await world.dataSource.query('SELECT version FROM file_versions WHERE file_id = $1', [id]);
      return rows.length === 1 && rows[0].version === 2;
    });
    const [event]: Array<{ details: Record<string, unknown> }> = await world.dataSource.query(
      "SELECT details FROM audit_events WHERE file_id = $1 AND action = 'file.version_deleted'",
      [id],
    );
    expect(event!.details).toMatchObject({ version: 1, reason: 'retention:max-age', objectDeleted: true });
    expect(await objectExists(world, id)).toBe(false);
    expect((await world.files.findById(id))!).toMatchObject({
      status: 'stored',
      version: 2,
      versionCount: 1,
    });
    await request(world.server).delete(`/api/v1/files/${id}`).set(alice.auth).expect(204);
  });

  it('quotas count every version: a new version over QUOTA_BYTES is refused with 413 and leaves nothing', async () => {
    const [file] = await upload(world, alice, [{ filename: 'q.bin', body: randomBytes(80_000) }]);
    const id = file!.id;
    await waitForStored(world, id);
    expect((await postVersion(id, randomBytes(80_000))).status).toBe(202);
    await waitFor('version 2', async () => (await world.files.findById(id))!.version === 2);
    const usage = await request(world.server).get('/api/v1/usage').set(alice.auth).expect(200);
    expect(usage.body).toMatchObject({ bytes: 160_000, files: 1 });
    const refused = await postVersion(id, randomBytes(50_000));
    expect(refused.status).toBe(413);
    expect(await world.files.uploadsOfVersions(id)).toEqual([]);
    // Removing the old version frees its bytes; then the same upload fits.
    await request(world.server).delete(`/api/v1/files/${id}/versions/1`).set(alice.auth).expect(204);
    expect((await request(world.server).get('/api/v1/usage').set(alice.auth).expect(200)).body.bytes).toBe(
      80_000,
    );
    expect((await postVersion(id, randomBytes(50_000))).status).toBe(202);
  });
});

describe('versions on S3 with per-file-secret keys', () => {
  let world: World;
  let fake: SecretsManagerFake;
  let alice: TestUser;
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

  beforeAll(async () => {
    // The provider uses the SDK's default credential chain; the fake only checks that requests are signed.
    process.env.AWS_ACCESS_KEY_ID = 'test';
    process.env.AWS_SECRET_ACCESS_KEY = 'test';
    world = await createWorld({
      store: 's3',
      workers: 'in-process',
      secretsManager: { mode: 'per-file-secret' },
    });
    fake = world.secretsManager!;
    alice = await createUser(world.server, `alice_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
    if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
    else process.env.AWS_ACCESS_KEY_ID = saved.id;
    if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
    else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
  });

  it("each version has its own secret; a shared one stays until no version uses it; the file's delete removes all", async () => {
    const v1 = randomBytes(6 * 1024 * 1024);
    const v2 = randomBytes(1000);
    const [file] = await upload(world, alice, [{ filename: 's.bin', body: v1 }]);
    const id = file!.id;
    await waitForStored(world, id);
    const res = await postMultipart(
      `${world.base}/api/v1/files/${id}/versions`,
      [{ filename: 's.bin', body: v2 }],
      {
        headers: alice.auth,
      },
    );
    expect(res.status).toBe(202);
    const v2Id: string = JSON.parse(res.body).upload.id;
    await waitFor('version 2', async () => (await world.files.findById(id))!.version === 2);
    expect(fake.secret(`tess/files/${v2Id}`)?.deleted).toBe(false);
    await request(world.server).post(`/api/v1/files/${id}/versions/1/restore`).set(alice.auth).expect(201);
    for (const [n, body] of [v1, v2, v1].entries()) {
      const got = await rawRequest(`${world.base}/api/v1/files/${id}/versions/${n + 1}/content`, {
        headers: alice.auth,
      });
      expect(got.sha256).toBe(sha256(body));
    }

    // v1 shares its object and secret with v3: both stay.
    await request(world.server).delete(`/api/v1/files/${id}/versions/1`).set(alice.auth).expect(204);
    expect(fake.secret(`tess/files/${id}`)?.deleted).toBe(false);
    expect(await objectExists(world, id)).toBe(true);
    // v2 is alone with its object: both go.
    await request(world.server).delete(`/api/v1/files/${id}/versions/2`).set(alice.auth).expect(204);
    expect(fake.secret(`tess/files/${v2Id}`)).toBeUndefined();
    expect(await objectExists(world, v2Id)).toBe(false);
    expect(
      (await rawRequest(`${world.base}/api/v1/files/${id}/content`, { headers: alice.auth })).sha256,
    ).toBe(sha256(v1));

    await request(world.server).delete(`/api/v1/files/${id}`).set(alice.auth).expect(204);
    expect(fake.secret(`tess/files/${id}`)).toBeUndefined();
    expect(await listObjects(world)).toEqual([]);
  });
});
