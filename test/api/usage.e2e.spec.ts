import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upload, waitForStored } from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * GET /api/v1/usage: the user's bytes and files as the quota check counts them (PostgreSQL, failed files
 * excluded), with the quotas when they are set; the dashboard is first painted with the same figures.
 */

async function usageOf(world: World, user: TestUser): Promise<Record<string, number>> {
  const res = await request(world.server).get('/api/v1/usage').set(user.auth).expect(200);
  return res.body as Record<string, number>;
}

describe('storage usage without quotas', () => {
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

  it('starts at zero and has no quota fields', async () => {
    expect(await usageOf(world, alice)).toEqual({ bytes: 0, files: 0 });
  });

  it('counts every upload of the user, queued or stored, and only theirs; a delete gives it back', async () => {
    const [a, b] = await upload(world, alice, [
      { filename: 'a.bin', body: Buffer.alloc(1000, 1) },
      { filename: 'b.bin', body: Buffer.alloc(234, 2) },
    ]);
    expect(await usageOf(world, alice)).toEqual({ bytes: 1234, files: 2 });
    await waitForStored(world, a!.id);
    await waitForStored(world, b!.id);
    expect(await usageOf(world, alice)).toEqual({ bytes: 1234, files: 2 });
    expect(await usageOf(world, bob)).toEqual({ bytes: 0, files: 0 });
    await request(world.server).delete(`/api/v1/files/${a!.id}`).set(alice.auth).expect(204);
    expect(await usageOf(world, alice)).toEqual({ bytes: 234, files: 1 });
  });

  it('answers a session too, and paints the dashboard with the same figures', async () => {
    const res = await alice.agent.get('/api/v1/usage').expect(200);
    expect(res.body).toEqual({ bytes: 234, files: 1 });
    const home = await alice.agent.get('/home').expect(200);
    expect(home.text).toContain('data-bytes="234" data-files="1" data-quota-bytes="" data-quota-files=""');
  });

  it('requires authentication', async () => {
    await request(world.server).get('/api/v1/usage').expect(401);
  });
});

describe('storage usage with quotas', () => {
  let world: World;
  let alice: TestUser;

  beforeAll(async () => {
    world = await createWorld({
      workers: 'in-process',
      env: { QUOTA_BYTES: '10000', QUOTA_FILES: '3' },
    });
    alice = await createUser(world.server, `alice_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  it('reports the quotas beside the figures, on the API and the dashboard', async () => {
    await upload(world, alice, [{ filename: 'a.bin', body: Buffer.alloc(2500, 1) }]);
    expect(await usageOf(world, alice)).toEqual({ bytes: 2500, files: 1, quotaBytes: 10_000, quotaFiles: 3 });
    const home = await alice.agent.get('/home').expect(200);
    expect(home.text).toContain(
      'data-bytes="2500" data-files="1" data-quota-bytes="10000" data-quota-files="3"',
    );
  });
});
