import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileRepository } from '#common';
import { type RunningGateway, startStack, type TestStack, waitForStatus } from '../support/apps.js';
import { bytesOf } from '../support/multipart.js';
import type { TestEnv } from '../support/test-env.js';
import { createUser } from '../support/users.js';

let stack: TestStack;
let env: TestEnv;
let gw: RunningGateway;

beforeAll(async () => {
  stack = await startStack();
  ({ env, gw } = stack);
});

afterAll(async () => {
  await stack?.close();
});

describe('activity page', () => {
  it("shows the user's own audit trail, and nobody else's", async () => {
    const alice = await createUser(gw.app.getHttpServer(), `alice_${env.id}`);
    const bob = await createUser(gw.app.getHttpServer(), `bob_${env.id}`);
    const up = await request(gw.url)
      .post('/api/v1/uploads')
      .set(alice.auth)
      .attach('file', bytesOf(5000), 'secret-plan.txt');
    const id = up.body.files[0].id as string;
    expect(await waitForStatus(gw.app.get(FileRepository), id)).toBe('stored');
    await request(gw.url).post(`/api/v1/files/${id}/verify`).set(alice.auth).expect(200);
    await request(gw.url).delete(`/api/v1/files/${id}`).set(alice.auth).expect(204);

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
    await request(gw.url).get('/activity').expect(303).expect('Location', '/login');
  });
});
