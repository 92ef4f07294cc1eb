import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileRepository } from '#common';
import { rotateMasterKey } from '../../scripts/rotate-master-key.js';
import { sha256 } from '../support/bytes.js';
import { waitFor, waitForStatus } from '../support/client.js';
import { bytesOf } from '../support/multipart.js';
import { createUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

let world: World;

/** The whole body of a 200 download, as bytes. */
async function body(base: string, path: string, auth: Record<string, string>): Promise<Buffer> {
  const res = await request(base)
    .get(path)
    .set(auth)
    .buffer(true)
    .parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    })
    .expect(200);
  return res.body as Buffer;
}

beforeAll(async () => {
  world = await createWorld({ workers: 'in-process' });
});

afterAll(async () => {
  await world?.close();
});

describe('npm run rotate-master-key', () => {
  it('re-wraps every data key under a new master key version without touching the objects', async () => {
    const user = await createUser(world.app.getHttpServer(), `rot_${world.id}`);
    const files = world.app.get(FileRepository);
    const uploads = [bytesOf(1234), bytesOf(2 * 1024 * 1024 + 1)];
    const ids: string[] = [];
    for (const data of uploads) {
      const res = await request(world.base)
        .post('/api/v1/uploads')
        .set(user.auth)
        .attach('file', data, 'f.bin')
        .expect(202);
      ids.push(res.body.files[0].id);
    }
    for (const id of ids) expect((await waitForStatus(world, id, 'stored')).status).toBe('stored');
    const before = await Promise.all(ids.map((id) => files.findById(id)));
    const objectHashes = await Promise.all(
      ids.map(async (id) => sha256(await readFile(join(world.config.dataDir, 'objects', id)))),
    );

    const report = await rotateMasterKey(world.config);
    expect(report).toMatchObject({ rewrapped: 2, unchanged: 0 });
    const after = await Promise.all(ids.map((id) => files.findById(id)));
    for (const [i, file] of after.entries()) {
      expect(file!.keyRef).toBe(report.keyRef);
      expect(file!.keyRef).not.toBe(before[i]!.keyRef);
      expect(file!.wrappedKey!.equals(before[i]!.wrappedKey!)).toBe(false);
      expect(sha256(await readFile(join(world.config.dataDir, 'objects', ids[i]!)))).toBe(objectHashes[i]);
    }

    // Both files still download and verify with the re-wrapped keys (in a gateway with a fresh key cache).
    const fresh = await world.startGateway();
    try {
      for (const [i, id] of ids.entries()) {
        expect(sha256(await body(fresh.url, `/api/v1/files/${id}/content`, user.auth))).toBe(
          sha256(uploads[i]!),
        );
        await request(fresh.url)
          .post(`/api/v1/files/${id}/verify`)
          .set(user.auth)
          .expect(200, { ok: true, checkedBytes: uploads[i]!.length });
      }
    } finally {
      await fresh.app.close();
    }

    // Re-running without a new version is a no-op (an interrupted rotation can simply be repeated).
    expect(await rotateMasterKey(world.config, { rotate: false })).toMatchObject({
      rewrapped: 0,
      unchanged: 2,
    });
  });
});

describe('rotate-master-key with file versions', () => {
  // A world of its own: the one above has rotated its master key under its running gateway already.
  let world: World;

  beforeAll(async () => {
    world = await createWorld({ workers: 'in-process' });
  });

  afterAll(async () => {
    await world?.close();
  });

  it("re-wraps every version's key, bound to its own object id; every version still downloads", async () => {
    const user = await createUser(world.app.getHttpServer(), `rotv_${world.id}`);
    const bodies = [bytesOf(3000), Buffer.from('the second version')];
    const first = await request(world.base)
      .post('/api/v1/uploads')
      .set(user.auth)
      .attach('file', bodies[0]!, 'v.bin')
      .expect(202);
    const id: string = first.body.files[0].id;
    await waitForStatus(world, id, 'stored');
    await request(world.base)
      .post(`/api/v1/files/${id}/versions`)
      .set(user.auth)
      .attach('file', bodies[1]!, 'v.bin')
      .expect(202);
    await waitFor('version 2', async () => (await world.files.findById(id))!.version === 2);
    // v3 restores v1: the file's current object is its own again; v2's object is bound to its upload id.
    await request(world.base).post(`/api/v1/files/${id}/versions/1/restore`).set(user.auth).expect(201);

    const report = await rotateMasterKey(world.config);
    // The file's current object (v1 and v3) and v2's object (listed from file_versions: no files row has it).
    expect(report).toMatchObject({ rewrapped: 2, unchanged: 0 });
    const keyRefs: Array<{ key_ref: string }> = await world.dataSource.query(
      `SELECT key_ref FROM file_versions WHERE file_id = $1 UNION SELECT key_ref FROM files WHERE id = $1`,
      [id],
    );
    expect(keyRefs).toEqual([{ key_ref: report.keyRef }]);

    const fresh = await world.startGateway();
    try {
      for (const [n, expected] of [bodies[0]!, bodies[1]!, bodies[0]!].entries()) {
        const got = await body(fresh.url, `/api/v1/files/${id}/versions/${n + 1}/content`, user.auth);
        expect(sha256(got)).toBe(sha256(expected));
      }
    } finally {
      await fresh.app.close();
    }
  });
});
