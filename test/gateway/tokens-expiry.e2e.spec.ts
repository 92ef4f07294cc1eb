import type { Server } from 'node:http';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Issue 22: API tokens may expire. `expiresIn` (the config's duration notation) on creation, shown as
 * `expiresAt` in the list; an expired token answers 401 saying so; API_TOKEN_MAX_LIFETIME caps the
 * lifetime and is the default when set.
 */

const DAY = 86_400_000;
let world: World;
let alice: TestUser;
let capped: Server;

beforeAll(async () => {
  world = await createWorld();
  alice = await createUser(world.server, `alice_${world.id}`);
  const gateway = await world.startGateway({ ...world.config, apiTokens: { maxLifetimeMs: 30 * DAY } });
  capped = gateway.app.getHttpServer();
}, 60_000);

afterAll(async () => {
  await world?.close();
});

function createToken(server: Server, extra: Record<string, unknown> = {}) {
  return request(server)
    .post('/api/v1/tokens')
    .send({ username: alice.username, password: TEST_PASSWORD, ...extra });
}

const near = (iso: string, expected: number) => Math.abs(Date.parse(iso) - expected) < 60_000;

describe('API token expiry', () => {
  it('without expiresIn and without a cap a token never expires (expiresAt null)', async () => {
    const created = await createToken(world.server, { name: 'forever' }).expect(201);
    expect(created.body.expiresAt).toBeNull();
    const list = await request(world.server).get('/api/v1/tokens').set(alice.auth).expect(200);
    expect(list.body.tokens.find((t: { id: string }) => t.id === created.body.id)).toMatchObject({
      name: 'forever',
      expiresAt: null,
    });
  });

  it('expiresIn sets expiresAt, shown in the token list; the token works until then', async () => {
    const created = await createToken(world.server, { name: 'month', expiresIn: '30d' }).expect(201);
    expect(near(created.body.expiresAt, Date.now() + 30 * DAY)).toBe(true);
    const auth = { Authorization: `Bearer ${created.body.token}` };
    const list = await request(world.server).get('/api/v1/tokens').set(auth).expect(200);
    expect(list.body.tokens.find((t: { id: string }) => t.id === created.body.id).expiresAt).toBe(
      created.body.expiresAt,
    );
  });

  it('an expired token answers 401 saying when it expired and what to do', async () => {
    const created = await createToken(world.server, { expiresIn: '1h' }).expect(201);
    await world.dataSource.query(`UPDATE api_tokens SET expires_at = '2026-01-02T03:04:05Z' WHERE id = $1`, [
      created.body.id,
    ]);
    for (const path of ['/api/v1/files', '/api/v1/tokens']) {
      const res = await request(world.server)
        .get(path)
        .set('Authorization', `Bearer ${created.body.token}`)
        .expect(401);
      expect(res.body).toEqual({
        statusCode: 401,
        error: 'Unauthorized',
        message:
          'This API token expired at 2026-01-02T03:04:05.000Z; create a new one with POST /api/v1/tokens.',
      });
    }
    // An unknown token keeps the generic answer.
    const unknown = await request(world.server).get('/api/v1/files').set('Authorization', 'Bearer tess_nope');
    expect(unknown.status).toBe(401);
    expect(unknown.body.message).toContain('invalid or has been revoked');
  });

  it.each([
    ['soon', 'expiresIn: must be a duration'],
    ['0', 'expiresIn: must be longer than 0'],
    ['30s', 'expiresIn: must be at least 1m'],
    ['3651d', 'expiresIn: must be at most 3650d'],
    ['9'.repeat(400), 'expiresIn'],
    [3600, 'expiresIn: must be a duration'],
    [['1d'], 'expiresIn: must be a duration'],
  ])('refuses expiresIn %j with 400 (%s)', async (expiresIn, message) => {
    const res = await createToken(world.server, { expiresIn }).expect(400);
    expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(res.body.message).toContain(message);
  });

  it('API_TOKEN_MAX_LIFETIME is the default lifetime and refuses a longer expiresIn', async () => {
    const byDefault = await createToken(capped).expect(201);
    expect(near(byDefault.body.expiresAt, Date.now() + 30 * DAY)).toBe(true);
    const shorter = await createToken(capped, { expiresIn: '7d' }).expect(201);
    expect(near(shorter.body.expiresAt, Date.now() + 7 * DAY)).toBe(true);
    const longer = await createToken(capped, { expiresIn: '31d' }).expect(400);
    expect(longer.body.message).toBe(
      'expiresIn 31d is longer than this server allows (API_TOKEN_MAX_LIFETIME=30d).',
    );
  });
});
