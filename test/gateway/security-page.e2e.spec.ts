import { io, type Socket } from 'socket.io-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient, type ServerToClientEvents } from '#common';
import { csrfFrom, sessionCookie } from '../support/http.js';
import { openSessionSocket } from '../support/session-socket.js';
import { createUser, signIn, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * API tokens and sessions on the security page (docs/security.md items 30c, 30d) against the real
 * PostgreSQL and Redis: a token made on the page is shown once, listed and revoked there (CSRF on every
 * form); the session list shows each sign-in, and ending one disconnects its socket at once and makes
 * its next request anonymous.
 */

const ORIGIN = 'http://tess.test';
let world: World;
let counter = 0;
const sockets: Socket<ServerToClientEvents>[] = [];

beforeAll(async () => {
  world = await createWorld({
    env: { ALLOWED_ORIGINS: ORIGIN, LOGIN_MAX_FAILURES_PER_PAIR: '5', LOGIN_MAX_FAILURES_PER_IP: '1000' },
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await world?.close();
});

async function newUser(): Promise<TestUser> {
  counter += 1;
  return createUser(world.server, `sec${counter}_${world.id}`);
}

/** Signs in with a fresh session (this user agent) and returns its cookie. */
async function sessionOf(username: string, userAgent: string): Promise<string> {
  const { res } = await signIn(world.server, username, { userAgent });
  expect(res.status).toBe(303);
  return sessionCookie(res)!;
}

async function openSocket(cookie: string): Promise<Socket<ServerToClientEvents>> {
  const socket = await openSessionSocket(world.base, cookie, ORIGIN);
  sockets.push(socket);
  return socket;
}

const actions = async (username: string, action: string) =>
  (await world.dataSource.query(
    `SELECT a.details FROM audit_events a JOIN users u ON u.id = a.user_id
      WHERE u.username = $1 AND a.action = $2 ORDER BY a.created_at, a.id`,
    [username, action],
  )) as Array<{ details: Record<string, unknown> }>;

const tokenRows = (html: string) =>
  [...html.matchAll(/data-testid="token-row" data-token-id="([0-9a-f-]{36})"/g)].map((m) => m[1]!);
const sessionHandles = (html: string) =>
  [...html.matchAll(/data-testid="session-row" data-session="([A-Za-z0-9_-]{22})"/g)].map((m) => m[1]!);

describe('API tokens on the security page', () => {
  it('creates a named token shown once, lists it, and revokes it; every form needs the CSRF token', async () => {
    const user = await newUser();
    const page = await user.agent.get('/account/security').expect(200);
    // createUser made one token with the API.
    expect(tokenRows(page.text)).toHaveLength(1);

    await user.agent
      .post('/account/security/tokens')
      .type('form')
      .send({ tokenName: 'backup box', tokenExpiresIn: '30d' })
      .expect(403);
    const bad = await user.agent
      .post('/account/security/tokens')
      .type('form')
      .send({ _csrf: csrfFrom(page), tokenName: 'x', tokenExpiresIn: '12345d' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Choose one of the offered expiries.');
    const unnamed = await user.agent
      .post('/account/security/tokens')
      .type('form')
      .send({ _csrf: csrfFrom(page), tokenName: '  ', tokenExpiresIn: '30d' });
    expect(unnamed.status).toBe(400);
    expect(tokenRows(unnamed.text)).toHaveLength(1);

    const made = await user.agent
      .post('/account/security/tokens')
      .type('form')
      .send({ _csrf: csrfFrom(page), tokenName: 'backup box', tokenExpiresIn: '30d' });
    expect(made.status).toBe(201);
    expect(made.headers['cache-control']).toBe('private, no-store');
    const token = /data-testid="new-token-value">(tess_[A-Za-z0-9_-]{43})</.exec(made.text)?.[1];
    expect(token).toBeDefined();
    await request(world.server).get('/api/v1/files').set('Authorization', `Bearer ${token}`).expect(200);

    const listed = await user.agent.get('/account/security').expect(200);
    expect(listed.text).not.toContain(token!);
    expect(listed.text).toContain('backup box');
    const ids = tokenRows(listed.text);
    expect(ids).toHaveLength(2);
    const { body } = await request(world.server).get('/api/v1/tokens').set(user.auth).expect(200);
    const created = body.tokens.find((t: { name: string }) => t.name === 'backup box');
    const days = (Date.parse(created.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);

    await user.agent.post(`/account/security/tokens/${created.id}/revoke`).type('form').send({}).expect(403);
    await user.agent
      .post('/account/security/tokens/not-a-uuid/revoke')
      .type('form')
      .send({ _csrf: csrfFrom(listed) })
      .expect(400);
    // Another user's token is not found (and stays alive).
    const other = await newUser();
    const { body: others } = await request(world.server).get('/api/v1/tokens').set(other.auth).expect(200);
    await user.agent
      .post(`/account/security/tokens/${others.tokens[0].id}/revoke`)
      .type('form')
      .send({ _csrf: csrfFrom(listed) })
      .expect(404);
    await request(world.server).get('/api/v1/files').set(other.auth).expect(200);

    await user.agent
      .post(`/account/security/tokens/${created.id}/revoke`)
      .type('form')
      .send({ _csrf: csrfFrom(listed) })
      .expect(303)
      .expect('Location', '/account/security');
    await request(world.server).get('/api/v1/files').set('Authorization', `Bearer ${token}`).expect(401);
    expect(tokenRows((await user.agent.get('/account/security')).text)).toHaveLength(1);
    expect((await actions(user.username, 'token.created')).map((a) => a.details.name)).toContain(
      'backup box',
    );
    expect((await actions(user.username, 'token.revoked'))[0]?.details.tokenId).toBe(created.id);
  });
});

describe('sessions on the security page', () => {
  it('lists each sign-in; ending one disconnects its socket at once and its next request is 401', async () => {
    const user = await newUser();
    const phone = await sessionOf(user.username, 'PhoneBrowser/1.0');
    const laptop = await sessionOf(user.username, 'LaptopBrowser/2.0');
    const socket = await openSocket(phone);

    const page = await request(world.server).get('/account/security').set('Cookie', laptop).expect(200);
    expect(page.text).toContain('PhoneBrowser/1.0');
    expect(page.text).toContain('LaptopBrowser/2.0');
    expect(page.text.match(/last seen <time datetime="\d{4}-/g)).toHaveLength(3);
    expect(page.text).toMatch(/from (::ffff:)?127\.0\.0\.1 /);
    // createUser's own session, the phone and the laptop; the laptop (asking) is "this session", first.
    const handles = sessionHandles(page.text);
    expect(handles).toHaveLength(3);
    expect(page.text.match(/data-testid="this-session"/g)).toHaveLength(1);
    expect(page.text.indexOf('LaptopBrowser/2.0')).toBeLessThan(page.text.indexOf('PhoneBrowser/1.0'));
    // Session ids never reach the page: only their handles.
    const phoneId = decodeURIComponent(phone.split('=')[1]!).slice(2).split('.')[0]!;
    expect(page.text).not.toContain(phoneId);

    const phoneRow = page.text
      .split('data-testid="session-row"')
      .find((row) => row.includes('PhoneBrowser'))!;
    const phoneHandle = /data-session="([A-Za-z0-9_-]{22})"/.exec(phoneRow)![1]!;
    await request(world.server)
      .post(`/account/security/sessions/${phoneHandle}/end`)
      .set('Cookie', laptop)
      .type('form')
      .send({})
      .expect(403);
    await request(world.server).get('/api/v1/files').set('Cookie', phone).expect(200);

    const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
    await request(world.server)
      .post(`/account/security/sessions/${phoneHandle}/end`)
      .set('Cookie', laptop)
      .type('form')
      .send({ _csrf: csrfFrom(page) })
      .expect(303)
      .expect('Location', '/account/security');
    expect(await disconnected).toBe('io server disconnect');
    await request(world.server).get('/api/v1/files').set('Cookie', phone).expect(401);
    await request(world.server).get('/home').set('Cookie', phone).expect(303).expect('Location', '/login');
    await request(world.server).get('/home').set('Cookie', laptop).expect(200);

    // Another user's list does not know this user's sessions.
    const stranger = await newUser();
    const strangerPage = await stranger.agent.get('/account/security').expect(200);
    const laptopHandle = handles.find((h) => h !== phoneHandle && page.text.includes(h))!;
    await stranger.agent
      .post(`/account/security/sessions/${laptopHandle}/end`)
      .type('form')
      .send({ _csrf: csrfFrom(strangerPage) })
      .expect(404);
    await request(world.server).get('/home').set('Cookie', laptop).expect(200);
    await stranger.agent
      .post('/account/security/sessions/<script>/end')
      .type('form')
      .send({ _csrf: csrfFrom(strangerPage) })
      .expect(400);

    const ended = await actions(user.username, 'session.ended');
    expect(ended).toHaveLength(1);
    expect(ended[0]!.details).toMatchObject({ via: 'security-page', scope: 'one', ended: 1 });
  });

  it('keeps an ended session ended when a request in flight saves it back', async () => {
    const user = await newUser();
    const phone = await sessionOf(user.username, 'Racer/1.0');
    const sid = decodeURIComponent(phone.split('=')[1]!).slice(2).split('.')[0]!;
    const key = `${world.config.redis.prefix}:sess:${sid}`;
    const redis = createRedisClient(world.config.redis.url);
    await redis.connect();
    try {
      // What a request of the phone that started before the end would write when it finishes.
      const inFlight = (await redis.get(key))!;
      const page = await user.agent.get('/account/security').expect(200);
      const row = page.text.split('data-testid="session-row"').find((r) => r.includes('Racer/1.0'))!;
      const handle = /data-session="([A-Za-z0-9_-]{22})"/.exec(row)![1]!;
      await user.agent
        .post(`/account/security/sessions/${handle}/end`)
        .type('form')
        .send({ _csrf: csrfFrom(page) })
        .expect(303);
      expect(await redis.exists(key)).toBe(0);
      await redis.set(key, inFlight, 'PX', 60_000);
      await request(world.server).get('/api/v1/files').set('Cookie', phone).expect(401);
      // Refused once, the revived copy is gone for good.
      expect(await redis.exists(key)).toBe(0);
      await expect(
        new Promise<string>((resolve) => {
          const socket = io(world.base, {
            transports: ['websocket'],
            extraHeaders: { Cookie: phone, Origin: ORIGIN },
            reconnection: false,
            forceNew: true,
          });
          sockets.push(socket);
          socket.once('connect', () => resolve('connected'));
          socket.once('connect_error', () => resolve('refused'));
        }),
      ).resolves.toBe('refused');
    } finally {
      redis.disconnect();
    }
  });

  it('"sign out everywhere else" ends every other session and keeps this one', async () => {
    const user = await newUser();
    const a = await sessionOf(user.username, 'A/1');
    const b = await sessionOf(user.username, 'B/1');
    const socket = await openSocket(a);
    const disconnected = new Promise<string>((resolve) => socket.once('disconnect', resolve));
    const page = await request(world.server).get('/account/security').set('Cookie', b).expect(200);
    const done = await request(world.server)
      .post('/account/security/sessions/others/end')
      .set('Cookie', b)
      .type('form')
      .send({ _csrf: csrfFrom(page) })
      .expect(303);
    expect(done.headers.location).toBe('/account/security');
    expect(await disconnected).toBe('io server disconnect');
    await request(world.server).get('/home').set('Cookie', a).expect(303);
    await user.agent.get('/home').expect(303);
    const after = await request(world.server).get('/account/security').set('Cookie', b).expect(200);
    expect(after.text).toContain('Signed out 2 other sessions.');
    expect(sessionHandles(after.text)).toHaveLength(1);
    expect((await actions(user.username, 'session.ended'))[0]!.details).toMatchObject({
      scope: 'others',
      ended: 2,
    });
  });

  it('ending this session from the list signs it out', async () => {
    const user = await newUser();
    const page = await user.agent.get('/account/security').expect(200);
    const mine =
      /data-testid="session-row" data-session="([A-Za-z0-9_-]{22})"[\s\S]*?data-testid="this-session"/.exec(
        page.text,
      )![1]!;
    await user.agent
      .post(`/account/security/sessions/${mine}/end`)
      .type('form')
      .send({ _csrf: csrfFrom(page) })
      .expect(303)
      .expect('Location', '/login');
    await user.agent.get('/home').expect(303).expect('Location', '/login');
  });
});
