import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB } from '../support/bytes.js';
import { auditCount, userId, waitForStored } from '../support/client.js';
import { headerLength, objectExists, readObject, SEGMENT, writeObject } from '../support/objects.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Bulk actions (issue 18): delete up to 1,000 ids with a result per id, and one streamed ZIP of verified
 * plaintexts that a real unzip tool extracts byte for byte, and that a tampered object cuts short.
 */

const run = promisify(execFile);

let world: World;
let alice: TestUser;
let bob: TestUser;
let dir: string;

beforeAll(async () => {
  world = await createWorld({ workers: 'in-process' });
  alice = await createUser(world.server, `alice_${world.id}`);
  bob = await createUser(world.server, `bob_${world.id}`);
  dir = await mkdtemp(join(tmpdir(), 'tess-zip-'));
}, 60_000);

afterAll(async () => {
  await world?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const api = () => request(world.server);

async function uploadOne(user: TestUser, name: string, body: Buffer, folderId?: string): Promise<string> {
  const req = api().post('/api/v1/uploads').set(user.auth);
  if (folderId) req.field('folderId', folderId);
  const res = await req.attach('file', body, name);
  expect(res.status, res.text).toBe(202);
  return res.body.files[0].id;
}

/** Rows straight into PostgreSQL (failed uploads: no object), `n` of them for `owner`. */
async function seedRows(owner: string, n: number): Promise<string[]> {
  const rows: Array<{ id: string }> = await world.dataSource.query(
    `INSERT INTO files (id, owner_id, filename, content_type, size, status, attempts, created_at, updated_at)
     SELECT gen_random_uuid(), $1, 'seed-' || g || '.bin', 'application/octet-stream', 10, 'failed', 0, now(), now()
       FROM generate_series(1, $2) g RETURNING id`,
    [owner, n],
  );
  return rows.map((r) => r.id);
}

/** POSTs the archive request and keeps what arrived, and whether the response ended cleanly. */
function fetchZip(
  user: TestUser,
  ids: string[],
): Promise<{ status: number; body: Buffer; complete: boolean; type?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${world.base}/api/v1/files/archive`, {
      method: 'POST',
      headers: { ...user.auth, 'Content-Type': 'application/json' },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let complete = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        complete = res.complete;
      });
      res.on('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks),
          complete,
          type: res.headers['content-type'],
        }),
      );
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end(JSON.stringify({ ids }));
  });
}

describe('bulk delete', () => {
  it('deletes 1,000 ids with foreign and missing ones among them, reporting each in order', async () => {
    const aliceId = await userId(world, alice);
    const bobId = await userId(world, bob);
    const real = await uploadOne(alice, 'real.bin', randomBytes(2000));
    await waitForStored(world, real);
    const mine = await seedRows(aliceId, 989);
    const bobs = await seedRows(bobId, 5);
    const missing = Array.from({ length: 5 }, () => randomUUID());
    const ids = [real, ...mine.slice(0, 500), ...bobs, ...missing, ...mine.slice(500)];
    expect(ids).toHaveLength(1000);

    const res = await api().post('/api/v1/files/bulk-delete').set(alice.auth).send({ ids });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ deleted: 990, notFound: 10, failed: 0 });
    expect(res.body.results.map((r: { id: string }) => r.id)).toEqual(ids);
    for (const r of res.body.results) {
      expect(r.status).toBe(bobs.includes(r.id) || missing.includes(r.id) ? 'not_found' : 'deleted');
    }
    const [{ n }] = await world.dataSource.query('SELECT count(*)::int AS n FROM files WHERE id = ANY($1)', [
      ids,
    ]);
    expect(n).toBe(5); // Bob's, untouched
    expect(await objectExists(world, real)).toBe(false);
    expect(await auditCount(world, real, 'file.deleted')).toBe(1);
    expect(await auditCount(world, mine[700]!, 'file.deleted')).toBe(1);
  }, 120_000);

  it.each([
    ['no ids', {}],
    ['an empty list', { ids: [] }],
    ['1,001 ids', { ids: Array.from({ length: 1001 }, () => randomUUID()) }],
    [
      'a repeated id',
      { ids: ['0b2f1c4e-8a3d-4f5e-9b6c-7d8e9f0a1b2c', '0b2f1c4e-8a3d-4f5e-9b6c-7d8e9f0a1b2c'] },
    ],
    ['something that is not an id', { ids: ['../etc/passwd'] }],
    ['an unknown field', { ids: [randomUUID()], force: true }],
  ])('refuses %s with 400', async (_what, body) => {
    await api().post('/api/v1/files/bulk-delete').set(alice.auth).send(body).expect(400);
  });
});

describe('ZIP download', () => {
  it('streams the verified plaintexts; unzip and python3 -m zipfile extract identical bytes under safe, distinct names', async () => {
    const folder = await api().post('/api/v1/folders').set(alice.auth).send({ name: 'zip-src' }).expect(201);
    const bodies = [randomBytes(2 * MiB + 12345), Buffer.from('hello zip\n'), Buffer.alloc(0)];
    const ids = [
      await uploadOne(alice, 'same.txt', bodies[0]!),
      await uploadOne(alice, 'SAME.txt', bodies[1]!, folder.body.id),
      await uploadOne(alice, '..hidden.bin', bodies[2]!),
    ];
    for (const id of ids) await waitForStored(world, id);
    const zip = await fetchZip(alice, ids);
    expect(zip.status).toBe(200);
    expect(zip.type).toBe('application/zip');
    expect(zip.complete).toBe(true);
    const path = join(dir, 'ok.zip');
    await writeFile(path, zip.body);
    await run('unzip', ['-t', path]);
    const out = join(dir, 'ok');
    await run('python3', ['-m', 'zipfile', '-e', path, out]);
    expect((await readdir(out)).sort()).toEqual(['SAME (2).txt', 'hidden.bin', 'same.txt'].sort());
    expect(Buffer.compare(await readFile(join(out, 'same.txt')), bodies[0]!)).toBe(0);
    expect(Buffer.compare(await readFile(join(out, 'SAME (2).txt')), bodies[1]!)).toBe(0);
    expect((await readFile(join(out, 'hidden.bin'))).length).toBe(0);
  }, 120_000);

  it('answers 404 for a foreign id and 409 for a file not stored, before sending anything', async () => {
    const mine = await uploadOne(alice, 'mine.bin', randomBytes(10));
    await waitForStored(world, mine);
    const bobs = await uploadOne(bob, 'bobs.bin', randomBytes(10));
    await waitForStored(world, bobs);
    const foreign = await api()
      .post('/api/v1/files/archive')
      .set(alice.auth)
      .send({ ids: [mine, bobs] })
      .expect(404);
    expect(foreign.body.message).toMatch(/1 of the 2 files do not exist \(or are not yours\)/);
    const [failed] = await seedRows(await userId(world, alice), 1);
    const unready = await api()
      .post('/api/v1/files/archive')
      .set(alice.auth)
      .send({ ids: [mine, failed] })
      .expect(409);
    expect(unready.body.message).toMatch(/Only stored files can be downloaded/);
  });

  it('a tampered object aborts the ZIP: the archive is cut (unzip refuses it), the file is corrupt, audited', async () => {
    const good = randomBytes(3000);
    const first = await uploadOne(alice, 'first.bin', good);
    const bad = await uploadOne(alice, 'tampered.bin', randomBytes(3 * MiB));
    const last = await uploadOne(alice, 'last.bin', randomBytes(3000));
    for (const id of [first, bad, last]) await waitForStored(world, id);
    const row = (await world.files.findById(bad))!;
    const object = await readObject(world, bad);
    const at = headerLength(row) + SEGMENT + 500; // inside the second segment
    object[at] = object[at]! ^ 0x01;
    await writeObject(world, bad, object);

    const zip = await fetchZip(alice, [first, bad, last]);
    expect(zip.status).toBe(200);
    expect(zip.complete).toBe(false);
    const path = join(dir, 'cut.zip');
    await writeFile(path, zip.body);
    await expect(run('unzip', ['-t', path])).rejects.toThrow();
    await expect(run('python3', ['-m', 'zipfile', '-t', path])).rejects.toThrow();
    // Nothing past the verified first segment of the tampered file was sent.
    expect(zip.body.length).toBeLessThan(good.length + SEGMENT + 4096);
    expect((await world.files.findById(bad))!.status).toBe('corrupt');
    expect(await auditCount(world, bad, 'files.archive_aborted')).toBe(1);
    expect(await auditCount(world, bad, 'file.corrupt')).toBe(1);
  }, 120_000);
});
