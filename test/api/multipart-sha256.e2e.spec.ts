import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileRepository } from '#common';
import { sha256 } from '../support/bytes.js';
import { tempFiles, userId, waitForJob, waitForStatus, waitForStored } from '../support/client.js';
import { listObjects } from '../support/objects.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * The multipart endpoint takes the client's SHA-256 as a `sha256` form field before the `file` part it
 * describes (README "Uploading"), so curl users get the same end-to-end proof as tus clients.
 */
let world: World;
let alice: TestUser;

beforeAll(async () => {
  world = await createWorld({ workers: 'in-process' });
  alice = await createUser(world.server, `msha_${world.id}`);
}, 60_000);

afterAll(async () => {
  await world?.close();
});

const post = () => request(world.server).post('/api/v1/uploads').set(alice.auth);

describe('POST /api/v1/uploads with a sha256 field', () => {
  it('records a matching SHA-256 as clientVerified, per file, and leaves files without one unverified', async () => {
    const one = randomBytes(300_000);
    const two = randomBytes(5_000);
    const res = await post()
      .field('sha256', sha256(one).toUpperCase())
      .attach('file', one, 'one.bin')
      .attach('file', two, 'two.bin')
      .expect(202);
    const [a, b] = res.body.files as Array<{ id: string }>;
    await waitForStored(world, a!.id);
    await waitForStored(world, b!.id);
    const viewA = await request(world.server).get(`/api/v1/files/${a!.id}`).set(alice.auth).expect(200);
    expect(viewA.body).toMatchObject({
      sha256: sha256(one),
      clientSha256: sha256(one),
      clientVerified: true,
    });
    const viewB = await request(world.server).get(`/api/v1/files/${b!.id}`).set(alice.auth).expect(200);
    expect(viewB.body).toMatchObject({ sha256: sha256(two) });
    expect(viewB.body).not.toHaveProperty('clientSha256');
    expect(viewB.body).not.toHaveProperty('clientVerified');
  });

  it('fails a file whose bytes differ from the declared SHA-256 as client-hash-mismatch, storing nothing', async () => {
    const body = randomBytes(70_000);
    const objectsBefore = await listObjects(world);
    const res = await post()
      .field('sha256', sha256('something else'))
      .attach('file', body, 'altered.bin')
      .expect(202);
    const id = res.body.files[0].id as string;
    const failed = await waitForStatus(world, id, 'failed');
    expect(failed.error).toMatch(/^client-hash-mismatch: /);
    expect(failed.error).toContain(sha256(body));
    await waitForJob(world, id, 'failed');
    expect((await world.queue.getJob(id))!.attemptsMade).toBe(1);
    expect(await listObjects(world)).toEqual(objectsBefore);
    expect(await tempFiles(world.config)).not.toContain(id);
  });

  it.each([
    [
      'not hexadecimal',
      (r: request.Test) => r.field('sha256', 'z'.repeat(64)).attach('file', Buffer.from('x'), 'x.bin'),
      /64 hexadecimal/,
    ],
    [
      'too short',
      (r: request.Test) => r.field('sha256', 'abc').attach('file', Buffer.from('x'), 'x.bin'),
      /64 hexadecimal/,
    ],
    [
      'after its file',
      (r: request.Test) => r.attach('file', Buffer.from('x'), 'x.bin').field('sha256', sha256('x')),
      /must come before/,
    ],
    [
      'twice before one file',
      (r: request.Test) =>
        r.field('sha256', sha256('x')).field('sha256', sha256('x')).attach('file', Buffer.from('x'), 'x.bin'),
      /Two "sha256" fields/,
    ],
  ])('answers 400 for a sha256 field %s and keeps nothing', async (_, build, message) => {
    const owner = await userId(world, alice);
    const before = (await world.app.get(FileRepository).listForOwner(owner, 100)).items.length;
    const res = await build(post());
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.message).toMatch(message);
    expect((await world.app.get(FileRepository).listForOwner(owner, 100)).items).toHaveLength(before);
    expect(await tempFiles(world.config)).toEqual([]);
  });
});
