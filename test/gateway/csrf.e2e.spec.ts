import type { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS } from '../../apps/gateway/src/infra/redis.module.js';
import { csrfFrom, formCookie, sessionCookie } from '../support/http.js';
import { createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

let world: World;
let user: TestUser;
const BASIC = 'Basic eDp5';

beforeAll(async () => {
  world = await createWorld();
  user = await createUser(world.server, `csrf_${world.id}`);
});

afterAll(async () => {
  await world?.close();
});

/** Session keys in Redis under this world's prefix. */
async function sessionKeys(): Promise<number> {
  const redis = world.app.get<Redis>(REDIS);
  let count = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(
      cursor,
      'MATCH',
      `${world.config.redis.prefix}:sess:*`,
      'COUNT',
      1000,
    );
    cursor = next;
    count += keys.length;
  } while (cursor !== '0');
  return count;
}

describe('CSRF and the Authorization header', () => {
  it('still needs _csrf on the login form when a Basic (proxy) Authorization header is sent', async () => {
    const res = await request(world.server)
      .post('/login')
      .set('Authorization', BASIC)
      .type('form')
      .send({ username: user.username, password: TEST_PASSWORD });
    expect(res.status).toBe(403);
    expect(res.text).toContain('CSRF');
    expect(sessionCookie(res)).toBeUndefined();
  });

  it('needs _csrf on page forms even with a valid Bearer header, and on session API calls with Basic', async () => {
    await user.agent
      .post('/logout')
      .set('Authorization', `Bearer ${user.token}`)
      .type('form')
      .send({})
      .expect(403);
    await user.agent.get('/home').expect(200);
    const unknownId = '2b1c5d1e-4a8f-4c3a-9d3e-1f2a3b4c5d6e';
    await user.agent.delete(`/api/v1/tokens/${unknownId}`).set('Authorization', BASIC).expect(403);
    // Behind a Basic proxy the dashboard's own API calls work by session, with the CSRF header.
    await user.agent.get('/api/v1/files').set('Authorization', BASIC).expect(200);
    await user.agent
      .delete(`/api/v1/tokens/${unknownId}`)
      .set('Authorization', BASIC)
      .set('X-CSRF-Token', user.csrf)
      .expect(404);
  });
});

describe('bearer tokens come from the Authorization header only', () => {
  it('refuses access_token in the query string or the body', async () => {
    const server = world.server;
    await request(server).get(`/api/v1/files?limit=1&access_token=${user.token}`).expect(401);
    await request(server)
      .get(`/api/v1/files?limit=1&access_token=${user.token}`)
      .set('Authorization', BASIC)
      .expect(401);
    await request(server)
      .post('/api/v1/files/2b1c5d1e-4a8f-4c3a-9d3e-1f2a3b4c5d6e/verify')
      .set('Authorization', BASIC)
      .send({ access_token: user.token })
      .expect(401);
    await request(server)
      .get('/api/v1/files?limit=1')
      .set('Authorization', `Bearer ${user.token}`)
      .expect(200);
    // The header decides, whatever the query string says.
    await request(server)
      .get('/api/v1/files?limit=1&access_token=tess_nope')
      .set('Authorization', `bearer ${user.token}`)
      .expect(200);
  });
});

describe('anonymous visitors store nothing', () => {
  it('2,000 cookieless GETs of /login and /register create no session in Redis', async () => {
    const before = await sessionKeys();
    const first: request.Response[] = [];
    for (let i = 0; i < 1000; i++) {
      for (const path of ['/login', '/register']) {
        const res = await request(world.server).get(path).expect(200);
        if (i === 0) first.push(res);
      }
    }
    expect(await sessionKeys()).toBe(before);
    for (const res of first) {
      expect(sessionCookie(res)).toBeUndefined();
      expect(formCookie(res)).toBeDefined();
    }
  });

  it('failed logins and registrations store nothing; the form cookie signs in', async () => {
    const before = await sessionKeys();
    const agent = request.agent(world.server);
    const page = await agent.get('/login').expect(200);
    const cookie = (page.headers['set-cookie'] as unknown as string[]).find((c) =>
      c.startsWith('tess.csrf='),
    )!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).toMatch(/Path=\//i);
    const csrf = csrfFrom(page);
    await agent
      .post('/login')
      .type('form')
      .send({ username: user.username, password: 'not the password', _csrf: csrf })
      .expect(401);
    const register = await agent.get('/register').expect(200);
    expect(csrfFrom(register)).toBe(csrf);
    await agent.post('/register').type('form').send({ username: 'a/b', _csrf: csrf }).expect(400);
    expect(await sessionKeys()).toBe(before);
    const signedIn = await agent
      .post('/login')
      .type('form')
      .send({ username: user.username, password: TEST_PASSWORD, _csrf: csrf })
      .expect(303);
    expect(sessionCookie(signedIn)).toBeDefined();
    expect(await sessionKeys()).toBe(before + 1);
    // The signed-in session has its own token; the anonymous one is retired.
    const home = await agent.get('/home').expect(200);
    expect(csrfFrom(home)).not.toBe(csrf);
    expect(home.headers['set-cookie']?.toString()).toMatch(/tess\.csrf=;/);
  });

  it("refuses a login with another visitor's token, or with a token but no cookie", async () => {
    const victim = await request(world.server).get('/login');
    const attacker = await request(world.server).get('/login');
    const body = { username: user.username, password: TEST_PASSWORD };
    await request(world.server)
      .post('/login')
      .set('Cookie', formCookie(victim)!)
      .type('form')
      .send({ ...body, _csrf: csrfFrom(attacker) })
      .expect(403);
    await request(world.server)
      .post('/login')
      .type('form')
      .send({ ...body, _csrf: csrfFrom(attacker) })
      .expect(403);
    await request(world.server)
      .post('/login')
      .set('Cookie', 'tess.csrf=forged')
      .type('form')
      .send({ ...body, _csrf: 'forged' })
      .expect(403);
  });
});
