import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upload, waitForStored } from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Identical content: a stored file whose SHA-256 equals another of the *same user's* stored files names
 * that file (`duplicateOf`: the oldest other one) in the API and on the dashboard's first paint. Nothing
 * is deduplicated, and another user's identical file is never mentioned (that would tell it exists).
 */

describe('identical uploads', () => {
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

  it("names the user's own earlier file with the same content, never another user's", async () => {
    const content = Buffer.from('the same quarterly figures\n'.repeat(500));
    const [first] = await upload(world, alice, [{ filename: 'report.pdf', body: content }]);
    await waitForStored(world, first!.id);
    const [second, other] = await upload(world, alice, [
      { filename: 'report (copy).pdf', body: content },
      { filename: 'different.txt', body: Buffer.from('something else') },
    ]);
    const [bobs] = await upload(world, bob, [{ filename: 'report.pdf', body: content }]);
    for (const f of [second!, other!, bobs!]) await waitForStored(world, f.id);

    const list = await request(world.server).get('/api/v1/files').set(alice.auth).expect(200);
    const byName = new Map(
      (list.body.items as { id: string; filename: string; duplicateOf?: unknown }[]).map((f) => [
        f.filename,
        f,
      ]),
    );
    const firstRow = (await world.files.findById(first!.id))!;
    expect(byName.get('report (copy).pdf')!.duplicateOf).toEqual({
      id: first!.id,
      filename: 'report.pdf',
      createdAt: firstRow.createdAt.toISOString(),
    });
    expect(byName.get('report.pdf')!.duplicateOf).toMatchObject({
      id: second!.id,
      filename: 'report (copy).pdf',
    });
    expect(byName.get('different.txt')).not.toHaveProperty('duplicateOf');
    // Both rows are kept: nothing is deduplicated.
    expect(list.body.items).toHaveLength(3);

    const one = await request(world.server).get(`/api/v1/files/${second!.id}`).set(alice.auth).expect(200);
    expect(one.body.duplicateOf).toMatchObject({ id: first!.id, filename: 'report.pdf' });

    // Bob's copy has the same SHA-256 as Alice's files, and is told nothing about them.
    const bobsFile = await request(world.server).get(`/api/v1/files/${bobs!.id}`).set(bob.auth).expect(200);
    expect(bobsFile.body.sha256).toBe(one.body.sha256);
    expect(bobsFile.body).not.toHaveProperty('duplicateOf');
    const bobsList = await request(world.server).get('/api/v1/files').set(bob.auth).expect(200);
    expect(bobsList.body.items[0]).not.toHaveProperty('duplicateOf');

    // The dashboard's first paint says the same, in the row.
    const home = await alice.agent.get('/home').expect(200);
    expect(home.text).toContain('Identical to report.pdf, uploaded');
    expect((await bob.agent.get('/home').expect(200)).text).not.toContain('Identical to report');
  });
});
