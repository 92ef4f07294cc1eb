import { randomBytes, randomUUID } from 'node:crypto';
import { parse as parseContentDisposition } from 'content-disposition';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCount, tempFiles, waitForStored } from '../support/client.js';
import { objectExists, readObject } from '../support/objects.js';
import { TUS } from '../support/tus.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Folders and file names (issue 18): the tree, names unique per folder case-insensitively, hostile names,
 * uploads into a folder, rename and move of files (metadata only), recursive delete, other users' ids.
 */

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

const api = () => request(world.server);

async function folder(user: TestUser, name: string, parentId: string | null = null): Promise<string> {
  const res = await api().post('/api/v1/folders').set(user.auth).send({ name, parentId }).expect(201);
  return res.body.id;
}

async function uploadInto(user: TestUser, folderId: string | null, name: string, body: Buffer) {
  const req = api().post('/api/v1/uploads').set(user.auth);
  if (folderId) req.field('folderId', folderId);
  const res = await req.attach('file', body, { filename: name, contentType: 'application/octet-stream' });
  expect(res.status, res.text).toBe(202);
  return res.body.files[0] as { id: string; filename: string };
}

async function folderCount(): Promise<number> {
  const [row] = await world.dataSource.query('SELECT count(*)::int AS n FROM folders');
  return row.n;
}

describe('folders', () => {
  it('are unique per parent whatever their case (409 naming the clash), and nest', async () => {
    const reports = await folder(alice, 'Reports');
    const clash = await api().post('/api/v1/folders').set(alice.auth).send({ name: 'rePORTS' }).expect(409);
    expect(clash.body.message).toMatch(/A folder named "rePORTS" is already there/);
    const inner = await folder(alice, 'reports', reports);
    // Another user's tree is separate.
    await folder(bob, 'Reports');
    const got = await api().get(`/api/v1/folders/${inner}`).set(alice.auth).expect(200);
    expect(got.body).toMatchObject({ id: inner, name: 'reports', parentId: reports });
    expect(got.body.path).toEqual([
      { id: reports, name: 'Reports' },
      { id: inner, name: 'reports' },
    ]);
    const list = await api().get('/api/v1/folders?parentId=root').set(alice.auth).expect(200);
    expect(list.body.items.map((f: { name: string }) => f.name)).toContain('Reports');
  });

  it.each([
    ['..', /cannot be "\." or "\.\."/],
    ['.', /cannot be "\." or "\.\."/],
    ['a/b', /cannot contain "\/"/],
    ['..\\..\\evil', /cannot contain "\/" or "\\"/],
    ['nul\u0000byte', /control characters/],
    ['line\nbreak', /control characters/],
    ['\u202Etxt.exe', /invisible or text-direction/],
    ['zero\u200Bwidth', /invisible or text-direction/],
    ['x'.repeat(256), /longer than 255/],
    ['   ', /is empty/],
  ])('refuses the folder name %j with 400, creating nothing', async (name, why) => {
    const before = await folderCount();
    const res = await api().post('/api/v1/folders').set(alice.auth).send({ name }).expect(400);
    expect(res.body.message).toMatch(why);
    expect(await folderCount()).toBe(before);
  });

  it('cannot move into itself or below itself (409); renames and moves are audited', async () => {
    const a = await folder(alice, 'cycle-a');
    const b = await folder(alice, 'cycle-b', a);
    const c = await folder(alice, 'cycle-c', b);
    for (const target of [a, b, c]) {
      const res = await api()
        .patch(`/api/v1/folders/${a}`)
        .set(alice.auth)
        .send({ parentId: target })
        .expect(409);
      expect(res.body.message).toMatch(/cannot be moved into itself or into one of its subfolders/);
    }
    const moved = await api()
      .patch(`/api/v1/folders/${c}`)
      .set(alice.auth)
      .send({ parentId: null, name: 'C' });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body).toMatchObject({ id: c, name: 'C', parentId: null });
    const [{ n }] = await world.dataSource.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE action IN ('folder.moved', 'folder.renamed') AND details->>'folderId' = $1",
      [c],
    );
    expect(n).toBe(2);
  });

  it('a move onto a name taken in the target folder is 409, and a folder deleted meanwhile is 404', async () => {
    const top = await folder(alice, 'move-clash');
    await folder(alice, 'Inbox', top);
    const other = await folder(alice, 'elsewhere');
    const inbox = await folder(alice, 'inbox', other);
    const res = await api()
      .patch(`/api/v1/folders/${inbox}`)
      .set(alice.auth)
      .send({ parentId: top })
      .expect(409);
    expect(res.body.message).toMatch(/A folder named "inbox" is already there/);
    // A file row whose folder vanished between the check and the insert: the foreign key answers 404.
    const gone = await folder(alice, 'gone');
    await world.dataSource.query('DELETE FROM folders WHERE id = $1', [gone]);
    const file = await uploadInto(alice, null, 'to-move.txt', randomBytes(5));
    await world.dataSource.query('UPDATE files SET folder_id = NULL WHERE id = $1', [file.id]);
    const moved = await world.files.rename(file.id, { folderId: gone }).catch((e: Error) => e);
    expect((moved as Error).name).toBe('FolderGoneError');
  });

  it("another user's folder answers 404 everywhere, and an upload into it keeps nothing", async () => {
    const mine = await folder(alice, 'private');
    await api().get(`/api/v1/folders/${mine}`).set(bob.auth).expect(404);
    await api().patch(`/api/v1/folders/${mine}`).set(bob.auth).send({ name: 'x' }).expect(404);
    await api().delete(`/api/v1/folders/${mine}`).set(bob.auth).expect(404);
    await api().get(`/api/v1/files?folderId=${mine}`).set(bob.auth).expect(404);
    await api().get(`/api/v1/folders?parentId=${mine}`).set(bob.auth).expect(404);
    await api().post('/api/v1/folders').set(bob.auth).send({ name: 'x', parentId: mine }).expect(404);
    await api().get(`/api/v1/folders/${randomUUID()}`).set(alice.auth).expect(404);
    const [{ n: rowsBefore }] = await world.dataSource.query('SELECT count(*)::int AS n FROM files');
    // An earlier test's file may still be on its way through the worker: only what this upload leaves counts.
    const stagedBefore = new Set(await tempFiles(world.config));
    const res = await api()
      .post('/api/v1/uploads')
      .set(bob.auth)
      .field('folderId', mine)
      .attach('file', randomBytes(100), 'sneaky.bin')
      .expect(404);
    expect(res.body.message).toBe('No such folder.');
    const [{ n: rowsAfter }] = await world.dataSource.query('SELECT count(*)::int AS n FROM files');
    expect(rowsAfter).toBe(rowsBefore);
    expect((await tempFiles(world.config)).filter((name) => !stagedBefore.has(name))).toEqual([]);
    const tus = await api()
      .post('/api/v1/tus')
      .set({ ...bob.auth, ...TUS, 'Upload-Length': '10' })
      .set(
        'Upload-Metadata',
        `filename ${Buffer.from('x.bin').toString('base64')},folderId ${Buffer.from(mine).toString('base64')}`,
      )
      .expect(404);
    expect(tus.body.message).toBe('No such folder.');
  });
});

describe('files in folders', () => {
  it('uploads go into the folder (multipart folderId, tus metadata) and lists filter by it', async () => {
    const docs = await folder(alice, 'docs');
    const a = await uploadInto(alice, docs, 'a.txt', randomBytes(500));
    const tus = await api()
      .post('/api/v1/tus')
      .set({ ...alice.auth, ...TUS, 'Upload-Length': '0' })
      .set(
        'Upload-Metadata',
        `filename ${Buffer.from('empty.bin').toString('base64')},folderId ${Buffer.from(docs).toString('base64')}`,
      )
      .expect(201);
    const tusId = tus.headers.location!.split('/').pop()!;
    const inDocs = await api().get(`/api/v1/files?folderId=${docs}`).set(alice.auth).expect(200);
    expect(inDocs.body.items.map((f: { id: string }) => f.id).sort()).toEqual([a.id, tusId].sort());
    for (const f of inDocs.body.items) expect(f.folderId).toBe(docs);
    const root = await api().get('/api/v1/files?folderId=root&limit=100').set(alice.auth).expect(200);
    expect(root.body.items.map((f: { id: string }) => f.id)).not.toContain(a.id);
    // Without folderId (clients from before folders): every file, in every folder.
    const all = await api().get('/api/v1/files?limit=100').set(alice.auth).expect(200);
    expect(all.body.items.map((f: { id: string }) => f.id)).toContain(a.id);
  });

  it('an upload whose name is taken in the folder keeps both: "name (2).ext", compared case-insensitively', async () => {
    const dir = await folder(alice, 'dups');
    const first = await uploadInto(alice, dir, 'Report.PDF', randomBytes(10));
    const second = await uploadInto(alice, dir, 'report.pdf', randomBytes(10));
    const third = await uploadInto(alice, dir, 'REPORT.pdf', randomBytes(10));
    expect([first.filename, second.filename, third.filename]).toEqual([
      'Report.PDF',
      'report (2).pdf',
      'REPORT (3).pdf',
    ]);
    // The same name in another folder is no clash.
    expect((await uploadInto(alice, null, 'Report.PDF', randomBytes(10))).filename).toMatch(/^Report/);
  });

  it('twelve concurrent uploads of one name all succeed, each under a name of its own', async () => {
    const dir = await folder(alice, 'race');
    const names = await Promise.all(
      Array.from(
        { length: 12 },
        async () => (await uploadInto(alice, dir, 'race.txt', randomBytes(10))).filename,
      ),
    );
    expect(new Set(names).size).toBe(12);
    expect(names.sort()).toEqual(
      ['race.txt', ...Array.from({ length: 11 }, (_, i) => `race (${i + 2}).txt`)].sort(),
    );
  });

  it('rename and move change metadata only: same object, audited, downloads under the new name', async () => {
    const from = await folder(alice, 'from');
    const to = await folder(alice, 'to');
    const body = randomBytes(4000);
    const up = await uploadInto(alice, from, 'old name.bin', body);
    const row = await waitForStored(world, up.id);
    const object = await readObject(world, up.id);

    const res = await api()
      .patch(`/api/v1/files/${up.id}`)
      .set(alice.auth)
      .send({ filename: 'New name.bin', folderId: to })
      .expect(200);
    expect(res.body).toMatchObject({ id: up.id, filename: 'New name.bin', folderId: to, sha256: row.sha256 });
    const after = (await world.files.findById(up.id))!;
    expect(after.objectKey).toBe(row.objectKey);
    expect(after.keyRef).toBe(row.keyRef);
    expect(await readObject(world, up.id)).toEqual(object);
    expect(await auditCount(world, up.id, 'file.renamed')).toBe(1);
    expect(await auditCount(world, up.id, 'file.moved')).toBe(1);

    const dl = await api()
      .get(`/api/v1/files/${up.id}/content`)
      .set(alice.auth)
      .buffer(true)
      .parse((r, cb) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => cb(null, Buffer.concat(chunks)));
      });
    expect(dl.status).toBe(200);
    expect(Buffer.compare(dl.body as Buffer, body)).toBe(0);
    expect(parseContentDisposition(dl.headers['content-disposition']!).parameters.filename).toBe(
      'New name.bin',
    );

    // Back to the root.
    const back = await api()
      .patch(`/api/v1/files/${up.id}`)
      .set(alice.auth)
      .send({ folderId: null })
      .expect(200);
    expect(back.body.folderId).toBeUndefined();
  });

  it('a rename onto a taken name is 409; hostile names 400; foreign ids 404; nothing changes', async () => {
    const dir = await folder(alice, 'rename-clash');
    const a = await uploadInto(alice, dir, 'one.txt', randomBytes(10));
    await uploadInto(alice, dir, 'two.txt', randomBytes(10));
    const clash = await api()
      .patch(`/api/v1/files/${a.id}`)
      .set(alice.auth)
      .send({ filename: 'TWO.txt' })
      .expect(409);
    expect(clash.body.message).toMatch(/A file named "TWO.txt" is already in that folder/);
    for (const filename of ['..', 'a/b.txt', 'x\u0000.txt', '\u202Egnp.exe', 'y'.repeat(256), '']) {
      await api().patch(`/api/v1/files/${a.id}`).set(alice.auth).send({ filename }).expect(400);
    }
    await api().patch(`/api/v1/files/${a.id}`).set(alice.auth).send({}).expect(400);
    await api()
      .patch(`/api/v1/files/${a.id}`)
      .set(alice.auth)
      .send({ filename: 'ok.txt', extra: 1 })
      .expect(400);
    await api().patch(`/api/v1/files/${a.id}`).set(bob.auth).send({ filename: 'mine.txt' }).expect(404);
    const bobs = await folder(bob, 'bobs');
    await api().patch(`/api/v1/files/${a.id}`).set(alice.auth).send({ folderId: bobs }).expect(404);
    const row = (await world.files.findById(a.id))!;
    expect(row.filename).toBe('one.txt');
    expect(row.folderId).toBe(dir);
    expect(await auditCount(world, a.id, 'file.renamed')).toBe(0);
  });
});

describe('deleting folders', () => {
  it('refuses a non-empty folder without recursive=true (409, nothing removed)', async () => {
    const top = await folder(alice, 'full');
    const up = await uploadInto(alice, top, 'keep.bin', randomBytes(100));
    const res = await api().delete(`/api/v1/folders/${top}`).set(alice.auth).expect(409);
    expect(res.body.message).toMatch(/is not empty \(1 file\(s\), 0 folder\(s\).*recursive=true/);
    expect(await world.files.findById(up.id)).not.toBeNull();
    await api().get(`/api/v1/folders/${top}`).set(alice.auth).expect(200);
    const empty = await folder(alice, 'empty');
    expect((await api().delete(`/api/v1/folders/${empty}`).set(alice.auth).expect(200)).body).toEqual({
      files: 0,
      folders: 1,
    });
  });

  it('recursive=true deletes every file of the subtree through the file deletion path, then the folders', async () => {
    const top = await folder(alice, 'tree');
    const mid = await folder(alice, 'mid', top);
    const leaf = await folder(alice, 'leaf', mid);
    const files = [
      await uploadInto(alice, top, 't.bin', randomBytes(300)),
      await uploadInto(alice, mid, 'm.bin', randomBytes(300)),
      await uploadInto(alice, leaf, 'l.bin', randomBytes(300)),
    ];
    for (const f of files) await waitForStored(world, f.id);
    const res = await api().delete(`/api/v1/folders/${top}?recursive=true`).set(alice.auth).expect(200);
    expect(res.body).toEqual({ files: 3, folders: 3 });
    for (const f of files) {
      expect(await world.files.findById(f.id)).toBeNull();
      expect(await objectExists(world, f.id)).toBe(false);
      expect(await auditCount(world, f.id, 'file.deleted')).toBe(1);
    }
    for (const id of [top, mid, leaf]) await api().get(`/api/v1/folders/${id}`).set(alice.auth).expect(404);
    const [{ n }] = await world.dataSource.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE action = 'folder.deleted' AND details->>'folderId' = $1",
      [top],
    );
    expect(n).toBe(1);
    await api().delete(`/api/v1/folders/${top}?recursive=maybe`).set(alice.auth).expect(400);
  });
});
