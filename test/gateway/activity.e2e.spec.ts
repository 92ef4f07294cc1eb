import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForStatus } from '../support/client.js';
import { bytesOf } from '../support/multipart.js';
import { createUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

let world: World;

beforeAll(async () => {
  world = await createWorld({ workers: 'in-process' });
});

afterAll(async () => {
  await world?.close();
});

describe('activity page', () => {
  it("shows the user's own audit trail, and nobody else's", async () => {
    const alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
    const bob = await createUser(world.app.getHttpServer(), `bob_${world.id}`);
    const up = await request(world.base)
      .post('/api/v1/uploads')
      .set(alice.auth)
      .attach('file', bytesOf(5000), 'secret-plan.txt');
    const id = up.body.files[0].id as string;
    expect((await waitForStatus(world, id, 'stored')).status).toBe('stored');
    await request(world.base).post(`/api/v1/files/${id}/verify`).set(alice.auth).expect(200);
    await request(world.base).delete(`/api/v1/files/${id}`).set(alice.auth).expect(204);

    const page = await alice.agent.get('/activity').expect(200);
    const actions = [...page.text.matchAll(/data-action="([^"]+)"/g)].map((m) => m[1]);
    for (const action of [
      'user.registered',
      'token.created',
      'upload.accepted',
      'file.stored',
      'file.verified',
      'file.deleted',
    ]) {
      expect(actions).toContain(action);
    }
    expect(page.text).toContain('secret-plan.txt');
    expect(page.text).toContain(id);

    const other = await bob.agent.get('/activity').expect(200);
    expect(other.text).not.toContain(id);
    expect(other.text).not.toContain('secret-plan.txt');
    await request(world.base).get('/activity').expect(303).expect('Location', '/login');
  });
});
