import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectKeyFor } from '#common';
import { sha256 } from '../support/bytes.js';
import { downloadContent, upload, userId, waitForStored } from '../support/client.js';
import { postMultipart } from '../support/multipart.js';
import { listObjects, objectExists } from '../support/objects.js';
import type { SecretsManagerFake } from '../support/secrets-manager-fake.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * DELETE /api/v1/files/:id removes the object, the key (per-file secret) and the row, is idempotent, and
 * cancels a job that has not run yet; per-user quotas refuse uploads without storing anything.
 */

async function tempFiles(world: World): Promise<string[]> {
  return (await readdir(world.config.tempDir).catch(() => [] as string[])).sort();
}

async function auditActions(world: World, user: TestUser, fileId: string): Promise<string[]> {
  const events = await world.audit.listForUser(await userId(world, user), 1000);
  return events.filter((e) => e.fileId === fileId).map((e) => e.action);
}

describe('delete (local store, envelope keys)', () => {
  let world: World;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    world = await createWorld({ workers: 'in-process', env: { WORKER_CONCURRENCY: '1' } });
    alice = await createUser(world.server, `alice_${world.id}`);
    bob = await createUser(world.server, `bob_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  it('removes the object, the job and the row; a second DELETE is 404 and changes nothing', async () => {
    const keepBody = randomBytes(5000);
    const [doomed, kept] = await upload(world, alice, [
      { filename: 'doomed.bin', body: randomBytes(2 * 1024 * 1024) },
      { filename: 'kept.bin', body: keepBody },
    ]);
    await waitForStored(world, doomed!.id);
    await waitForStored(world, kept!.id);
    expect(await objectExists(world, doomed!.id)).toBe(true);
    expect(await listObjects(world)).toEqual([objectKeyFor(doomed!.id), objectKeyFor(kept!.id)].sort());
    expect(await tempFiles(world)).toEqual([]);

    // Bob cannot delete it (404, nothing happens).
    await request(world.server).delete(`/api/v1/files/${doomed!.id}`).set(bob.auth).expect(404);
    expect(await objectExists(world, doomed!.id)).toBe(true);

    const res = await request(world.server).delete(`/api/v1/files/${doomed!.id}`).set(alice.auth).expect(204);
    expect(res.text).toBe('');
    expect(await world.files.findById(doomed!.id)).toBeNull();
    expect(await objectExists(world, doomed!.id)).toBe(false);
    expect(await world.queue.getJob(doomed!.id)).toBeUndefined();
    expect(await listObjects(world)).toEqual([objectKeyFor(kept!.id)]);
    expect(await auditActions(world, alice, doomed!.id)).toContain('file.deleted');

    const again = await request(world.server)
      .delete(`/api/v1/files/${doomed!.id}`)
      .set(alice.auth)
      .expect(404);
    expect(again.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
    expect((await auditActions(world, alice, doomed!.id)).filter((a) => a === 'file.deleted')).toHaveLength(
      1,
    );
    for (const path of [
      `/api/v1/files/${doomed!.id}`,
      `/api/v1/files/${doomed!.id}/content`,
      `/api/v1/jobs/${doomed!.id}`,
    ]) {
      await request(world.server).get(path).set(alice.auth).expect(404);
    }
    // The other file is untouched.
    expect(await listObjects(world)).toEqual([objectKeyFor(kept!.id)]);
    const download = await downloadContent(world, alice, kept!.id);
    expect(download.status).toBe(200);
    expect(download.sha256).toBe(sha256(keepBody));
  });

  it('deleting a file whose job is still queued removes the job and the temp file; a later worker stores nothing', async () => {
    await world.stopInProcessWorker();
    const [queued] = await upload(world, alice, [{ filename: 'queued.bin', body: randomBytes(3000) }]);
    expect(await world.queue.getJob(queued!.id)).toBeDefined();
    expect(await tempFiles(world)).toEqual([queued!.id]);

    await request(world.server).delete(`/api/v1/files/${queued!.id}`).set(alice.auth).expect(204);
    expect(await world.queue.getJob(queued!.id)).toBeUndefined();
    expect(await world.files.findById(queued!.id)).toBeNull();
    expect(await tempFiles(world)).toEqual([]);
    expect(await auditActions(world, alice, queued!.id)).toContain('file.deleted');

    // A sentinel queued after it: with one worker slot, FIFO order means the deleted job (had it
    // survived) would have run before the sentinel is stored.
    const before = await listObjects(world);
    const [sentinel] = await upload(world, alice, [{ filename: 'sentinel.bin', body: randomBytes(10) }]);
    await world.startInProcessWorker();
    await waitForStored(world, sentinel!.id);
    expect(await objectExists(world, queued!.id)).toBe(false);
    expect(await listObjects(world)).toEqual([...before, objectKeyFor(sentinel!.id)].sort());
    expect(await world.files.findById(queued!.id)).toBeNull();
    expect(await tempFiles(world)).toEqual([]);
  });
});

describe('delete (s3 store, per-file-secret keys)', () => {
  let world: World;
  let fake: SecretsManagerFake;
  let alice: TestUser;
  const saved = {
    id: process.env.AWS_ACCESS_KEY_ID,
    secret: process.env.AWS_SECRET_ACCESS_KEY,
  };

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

  it('removes the S3 object, the per-file secret and the row; idempotent', async () => {
    const body = randomBytes(6 * 1024 * 1024);
    const [file, other] = await upload(world, alice, [
      { filename: 'secret.bin', body },
      { filename: 'other.bin', body: randomBytes(100) },
    ]);
    const row = await waitForStored(world, file!.id);
    await waitForStored(world, other!.id);
    const name = `tess/files/${file!.id}`;
    expect(row.keyRef).toBe(`secret:${name}`);
    expect(row.wrappedKey).toBeNull();
    const secret = fake.secret(name);
    expect(secret?.deleted).toBe(false);
    const current = secret!.versions.find((v) => v.stages.includes('AWSCURRENT'))!;
    expect(JSON.parse(current.secretString!)).toMatchObject({ sha256: sha256(body) });
    expect(await objectExists(world, file!.id)).toBe(true);
    // Readable before deletion (the key comes from its secret).
    const download = await downloadContent(world, alice, file!.id);
    expect(download.status).toBe(200);
    expect(download.sha256).toBe(sha256(body));

    fake.resetCalls();
    await request(world.server).delete(`/api/v1/files/${file!.id}`).set(alice.auth).expect(204);
    expect(fake.secret(name)).toBeUndefined();
    expect(fake.calls.DeleteSecret).toBe(1);
    expect(await objectExists(world, file!.id)).toBe(false);
    expect(await world.files.findById(file!.id)).toBeNull();
    expect(await listObjects(world)).toEqual([objectKeyFor(other!.id)]);
    expect(fake.secret(`tess/files/${other!.id}`)?.deleted).toBe(false);

    await request(world.server).delete(`/api/v1/files/${file!.id}`).set(alice.auth).expect(404);
    expect(fake.calls.DeleteSecret).toBe(1);
    expect(await listObjects(world)).toEqual([objectKeyFor(other!.id)]);
    expect(world.s3!.proxy.stats('DeleteObject').requests).toBe(1);
  });
});

describe('quotas (QUOTA_FILES=2, QUOTA_BYTES=1000)', () => {
  let world: World;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    world = await createWorld({ env: { QUOTA_FILES: '2', QUOTA_BYTES: '1000' } });
    alice = await createUser(world.server, `alice_${world.id}`);
    bob = await createUser(world.server, `bob_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  async function expectState(user: TestUser, ids: string[]) {
    expect(await tempFiles(world)).toEqual([...ids].sort());
    const page = await world.files.listForOwner(await userId(world, user), 100);
    expect(page.items.map((f) => f.id).sort()).toEqual([...ids].sort());
    const jobs = await world.queue.getJobs(['waiting', 'active', 'delayed', 'prioritized']);
    expect(jobs.map((j) => j.id).sort()).toEqual([...ids].sort());
  }

  it('over the byte quota -> 413 with a clear message, nothing stored', async () => {
    const [first] = await upload(world, alice, [{ filename: 'a.bin', body: randomBytes(600) }]);
    await expectState(alice, [first!.id]);
    const res = await postMultipart(
      `${world.base}/api/v1/uploads`,
      [{ filename: 'b.bin', body: randomBytes(600) }],
      {
        headers: alice.auth,
      },
    );
    expect(res.status).toBe(413);
    const body = JSON.parse(res.body);
    expect(body).toMatchObject({ statusCode: 413, error: 'Payload Too Large' });
    expect(body.message).toMatch(/storage quota/);
    expect(body.message).toMatch(/Delete some files first/);
    await expectState(alice, [first!.id]);
  });

  it('over the file-count quota -> 409 with a clear message, nothing stored; deleting frees room', async () => {
    const existing = (await world.files.listForOwner(await userId(world, alice), 100)).items.map((f) => f.id);
    expect(existing).toHaveLength(1);
    const [second] = await upload(world, alice, [{ filename: 'c.bin', body: randomBytes(100) }]);
    const ids = [...existing, second!.id];
    await expectState(alice, ids);

    const res = await postMultipart(
      `${world.base}/api/v1/uploads`,
      [{ filename: 'd.bin', body: randomBytes(10) }],
      {
        headers: alice.auth,
      },
    );
    expect(res.status).toBe(409);
    const body = JSON.parse(res.body);
    expect(body).toMatchObject({ statusCode: 409, error: 'Conflict' });
    expect(body.message).toBe(
      'This upload would exceed your quota of 2 files (you have 2). Delete some files first.',
    );
    await expectState(alice, ids);

    // Two files in one request count as two.
    await request(world.server).delete(`/api/v1/files/${second!.id}`).set(alice.auth).expect(204);
    const both = await postMultipart(
      `${world.base}/api/v1/uploads`,
      [
        { filename: 'e.bin', body: randomBytes(10) },
        { filename: 'f.bin', body: randomBytes(10) },
      ],
      { headers: alice.auth },
    );
    expect(both.status).toBe(409);
    await expectState(alice, existing);

    const [third] = await upload(world, alice, [{ filename: 'g.bin', body: randomBytes(10) }]);
    await expectState(alice, [...existing, third!.id]);
  });

  it("quotas are per user: another user's uploads are not limited by alice's usage", async () => {
    const [mine] = await upload(world, bob, [{ filename: 'bob.bin', body: randomBytes(900) }]);
    expect(mine!.size).toBe(900);
    expect(await world.files.findById(mine!.id)).not.toBeNull();
  });
});
