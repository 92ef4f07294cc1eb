import type { Socket } from 'socket.io-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerToClientEvents } from '#common';
import { csrfFrom, formCookie, sessionCookie } from '../support/http.js';
import { openSessionSocket } from '../support/session-socket.js';
import { changePasswordOnPage, createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Password change (docs/security.md item 11a) on the account page and through the API, against the
 * real PostgreSQL and Redis: the current password is required and throttled like sign-in, the new one
 * passes the registration policy, every other session ends (sockets included), API tokens are kept.
 */

const ORIGIN = 'http://tess.test';
const PAIR = 3;
const NEW_PASSWORD = 'a brand new passphrase for tess';

let world: World;
let counter = 0;
const sockets: Socket<ServerToClientEvents>[] = [];

beforeAll(async () => {
  world = await createWorld({
    env: {
      ALLOWED_ORIGINS: ORIGIN,
      LOGIN_MAX_FAILURES_PER_PAIR: String(PAIR),
      LOGIN_MAX_FAILURES_PER_IP: '1000',
    },
  });
});

afterAll(async () => {
  for (const socket of sockets) socket.disconnect();
  await world?.close();
});

async function newUser(): Promise<TestUser> {
  counter += 1;
  return createUser(world.server, `pw${counter}_${world.id}`);
}

/** Signs in with a fresh session and returns its cookie. */
async function login(username: string, password: string): Promise<request.Response> {
  const page = await request(world.server).get('/login');
  return request(world.server)
    .post('/login')
    .set('Cookie', formCookie(page)!)
    .type('form')
    .send({ username, password, _csrf: csrfFrom(page) });
}

async function sessionOf(username: string): Promise<string> {
  const res = await login(username, TEST_PASSWORD);
  expect(res.status).toBe(303);
  return sessionCookie(res)!;
}

async function openSocket(cookie: string): Promise<Socket<ServerToClientEvents>> {
  const socket = await openSessionSocket(world.base, cookie, ORIGIN);
  sockets.push(socket);
  return socket;
}

async function audits(
  username: string,
  action: string,
): Promise<Array<{ details: Record<string, unknown> }>> {
  return world.dataSource.query(
    `SELECT a.details FROM audit_events a JOIN users u ON u.id = a.user_id
      WHERE u.username = $1 AND a.action = $2 ORDER BY a.created_at`,
    [username, action],
  );
}

const signedIn = async (cookie: string) =>
  (await request(world.server).get('/home').set('Cookie', cookie)).status === 200;

describe('password change on the account page', () => {
  it('requires the current password, signs out every other session and its sockets, keeps this one and the API tokens', async () => {
    const user = await newUser();
    const mine = await sessionOf(user.username);
    const other = await sessionOf(user.username);
    const otherSocket = await openSocket(other);
    const disconnected = new Promise<string>((resolve) => otherSocket.once('disconnect', resolve));
    const before = await world.users.findByUsername(user.username);
    const account = await request(world.server).get('/account').set('Cookie', mine).expect(200);
    expect(account.text).toContain(`${user.username}@example.test`);

    const res = await request(world.server)
      .post('/account/password')
      .set('Cookie', mine)
      .type('form')
      .send({
        _csrf: csrfFrom(account),
        currentPassword: TEST_PASSWORD,
        newPassword: NEW_PASSWORD,
        confirmPassword: NEW_PASSWORD,
      });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/account');
    // This session carries on under a new id (the credentials changed): the old id is dead.
    const renewed = sessionCookie(res)!;
    expect(renewed).not.toBe(mine);
    expect(await signedIn(mine)).toBe(false);
    const page = await request(world.server).get('/account').set('Cookie', renewed).expect(200);
    expect(page.text).toContain(
      'Your password was changed. Your 2 other sessions were signed out; your API tokens keep working.',
    );

    // The other sessions (the one createUser signed in, and `other`) are over, their sockets too.
    expect(await signedIn(other)).toBe(false);
    await user.agent.get('/home').expect(303);
    expect(await disconnected).toBe('io server disconnect');
    await request(world.server).get('/api/v1/usage').set(user.auth).expect(200);

    expect((await login(user.username, TEST_PASSWORD)).status).toBe(401);
    expect((await login(user.username, NEW_PASSWORD)).status).toBe(303);
    const after = await world.users.findByUsername(user.username);
    expect(after!.passwordHash).toMatch(/^\$argon2id\$v=19\$/);
    for (const parameter of ['m=19456', 't=2', 'p=1']) expect(after!.passwordHash).toContain(parameter);
    expect(after!.passwordHash).not.toBe(before!.passwordHash);
    expect(await audits(user.username, 'password.changed')).toEqual([
      { details: { via: 'page', endedSessions: 2 } },
    ]);
  });

  it('refuses a wrong current password, a weak or mistyped new one, and changes nothing', async () => {
    const user = await newUser();
    const other = await sessionOf(user.username);
    const wrong = await changePasswordOnPage(user, {
      currentPassword: 'not my password at all',
      newPassword: NEW_PASSWORD,
      confirmPassword: NEW_PASSWORD,
    });
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('Your current password is not correct.');
    const weak = await changePasswordOnPage(user, {
      currentPassword: TEST_PASSWORD,
      newPassword: 'Password123',
      confirmPassword: 'Password123',
    });
    expect(weak.status).toBe(400);
    expect(weak.text).toContain('That password is one of the most common ones; choose another.');
    const short = await changePasswordOnPage(user, {
      currentPassword: TEST_PASSWORD,
      newPassword: 'seven77',
      confirmPassword: 'seven77',
    });
    expect(short.text).toContain('Password must be at least 8 characters.');
    const mistyped = await changePasswordOnPage(user, {
      currentPassword: TEST_PASSWORD,
      newPassword: NEW_PASSWORD,
      confirmPassword: `${NEW_PASSWORD}!`,
    });
    expect(mistyped.status).toBe(400);
    expect(mistyped.text).toContain('The two new passwords are not the same.');
    const empty = await changePasswordOnPage(user, {});
    expect(empty.status).toBe(400);
    expect(empty.text).toContain('Current password is required.');
    expect(empty.text).toContain('New password is required.');

    expect(await signedIn(other)).toBe(true);
    expect((await login(user.username, TEST_PASSWORD)).status).toBe(303);
    expect(await audits(user.username, 'password.change_failed')).toEqual([{ details: { via: 'page' } }]);
    expect(await audits(user.username, 'password.changed')).toEqual([]);
  });

  it('needs the CSRF token and a signed-in session', async () => {
    const user = await newUser();
    await user.agent
      .post('/account/password')
      .type('form')
      .send({ currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD })
      .expect(403);
    const anonymous = await request(world.server).get('/account');
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.location).toBe('/login');
    expect((await login(user.username, TEST_PASSWORD)).status).toBe(303);
  });
});

describe('password change through the API', () => {
  const body = { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD };

  it('with a bearer token: 204, every session ends, the token keeps working', async () => {
    const user = await newUser();
    const second = await sessionOf(user.username);
    await request(world.server).post('/api/v1/account/password').set(user.auth).send(body).expect(204);
    await user.agent.get('/home').expect(303);
    expect(await signedIn(second)).toBe(false);
    await request(world.server).get('/api/v1/tokens').set(user.auth).expect(200);
    expect(await audits(user.username, 'password.changed')).toEqual([
      { details: { via: 'api', endedSessions: 2 } },
    ]);
  });

  it('with a session: needs X-CSRF-Token, keeps the calling session and ends the others', async () => {
    const user = await newUser();
    const other = await sessionOf(user.username);
    await user.agent.post('/api/v1/account/password').send(body).expect(403);
    await user.agent.post('/api/v1/account/password').set('X-CSRF-Token', user.csrf).send(body).expect(204);
    await user.agent.get('/home').expect(200);
    expect(await signedIn(other)).toBe(false);
  });

  it('answers 400 for a malformed body or a weak password, 403 for a wrong current password, 401 without credentials', async () => {
    const user = await newUser();
    const call = (payload: unknown) =>
      request(world.server)
        .post('/api/v1/account/password')
        .set(user.auth)
        .send(payload as object);
    const malformed = await call({ currentPassword: TEST_PASSWORD });
    expect(malformed.status).toBe(400);
    expect(malformed.body.message).toBe('newPassword: New password is required.');
    const weak = await call({ currentPassword: TEST_PASSWORD, newPassword: 'short' });
    expect(weak.status).toBe(400);
    expect(weak.body.message).toBe('newPassword: Password must be at least 8 characters.');
    const sameAsName = await call({ currentPassword: TEST_PASSWORD, newPassword: user.username });
    expect(sameAsName.body.message).toBe('newPassword: Password must not be your username.');
    const wrong = await call({ currentPassword: 'guess guess guess', newPassword: NEW_PASSWORD });
    expect(wrong.status).toBe(403);
    expect(wrong.body).toEqual({
      statusCode: 403,
      error: 'Forbidden',
      message: 'Your current password is not correct.',
    });
    await request(world.server).post('/api/v1/account/password').send(body).expect(401);
    expect((await login(user.username, TEST_PASSWORD)).status).toBe(303);
  });

  it('throttles wrong current passwords with the sign-in limits: 429 with Retry-After, audited', async () => {
    const user = await newUser();
    const ip = '10.77.0.1';
    const attempt = (currentPassword: string, from = ip) =>
      request(world.server)
        .post('/api/v1/account/password')
        .set(user.auth)
        .set('X-Forwarded-For', from)
        .send({ currentPassword, newPassword: NEW_PASSWORD });
    for (let i = 0; i < PAIR; i++) expect((await attempt(`wrong guess ${i}`)).status).toBe(403);
    const throttled = await attempt(TEST_PASSWORD);
    expect(throttled.status).toBe(429);
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThan(0);
    expect(throttled.body.message).toMatch(/^Too many failed sign-in attempts\. Try again in/);
    // The same limit the sign-in form uses: that address cannot sign in as the user either.
    const page = await request(world.server).get('/login');
    const form = await request(world.server)
      .post('/login')
      .set('Cookie', formCookie(page)!)
      .set('X-Forwarded-For', ip)
      .type('form')
      .send({ username: user.username, password: TEST_PASSWORD, _csrf: csrfFrom(page) });
    expect(form.status).toBe(429);
    // Another address is not held back.
    expect((await attempt(TEST_PASSWORD, '10.77.0.2')).status).toBe(204);
    expect(await audits(user.username, 'password.change_failed')).toHaveLength(PAIR);
    expect(await audits(user.username, 'password.change_throttled')).toEqual([
      { details: { limit: 'pair' } },
    ]);
  });
});

describe('without SMTP_URL', () => {
  it('offers no reset link, and the reset pages answer 404', async () => {
    const login = await request(world.server).get('/login').expect(200);
    expect(login.text).not.toContain('Forgot password?');
    expect(login.text).not.toContain('/forgot-password');
    await request(world.server).get('/forgot-password').expect(404);
    await request(world.server).get('/reset-password?token=x').expect(404);
    const page = await request(world.server).get('/login');
    await request(world.server)
      .post('/forgot-password')
      .set('Cookie', formCookie(page)!)
      .type('form')
      .send({ email: 'someone@example.test', _csrf: csrfFrom(page) })
      .expect(404);
    const [{ n }] = await world.dataSource.query('SELECT count(*)::int AS n FROM password_reset_tokens');
    expect(n).toBe(0);
  });
});
