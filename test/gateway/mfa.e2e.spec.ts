import { generate } from 'otplib';
import { io } from 'socket.io-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '#common';
import { resetMfa } from '../../scripts/reset-mfa.js';
import { csrfFrom, formCookie, sessionCookie } from '../support/http.js';
import { createUser, signIn, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Two-factor sign-in with TOTP (docs/security.md item 30) against the real PostgreSQL, Redis and key
 * provider, with codes computed here by otplib from the secret the security page shows.
 */

const ORIGIN = 'http://tess.test';
let world: World;
let counter = 0;

beforeAll(async () => {
  world = await createWorld({
    env: { ALLOWED_ORIGINS: ORIGIN, LOGIN_MAX_FAILURES_PER_PAIR: '4', LOGIN_MAX_FAILURES_PER_IP: '1000' },
  });
});

afterAll(async () => {
  await world?.close();
});

async function newUser(): Promise<TestUser> {
  counter += 1;
  return createUser(world.server, `mfa${counter}_${world.id}`);
}

const secretFrom = (res: request.Response) => /data-testid="totp-secret">([A-Z2-7]+)</.exec(res.text)?.[1];
const codesFrom = (res: request.Response) =>
  [...res.text.matchAll(/data-testid="recovery-code">([0-9a-f-]+)</g)].map((m) => m[1]!);

/** The code for `secret` one step from now (a fresh time step, as if the next 30 s had come). */
const codeAt = (secret: string, steps = 0) =>
  generate({ secret, epoch: Math.floor(Date.now() / 1000) + steps * 30 });

/** Sets up and turns on TOTP for the user's signed-in agent; returns the secret and recovery codes. */
async function enrol(user: TestUser): Promise<{ secret: string; codes: string[] }> {
  const page = await user.agent.get('/account/security').expect(200);
  expect(page.text).toContain('data-testid="totp-status">Off');
  await user.agent
    .post('/account/security/totp/setup')
    .type('form')
    .send({ _csrf: csrfFrom(page) })
    .expect(303);
  const setup = await user.agent.get('/account/security').expect(200);
  const secret = secretFrom(setup);
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  expect(setup.text).toMatch(/<img src="data:image\/svg\+xml;base64,[A-Za-z0-9+/]+(&#x3D;)*" alt="QR code/);
  const done = await user.agent
    .post('/account/security/totp/activate')
    .type('form')
    .send({ _csrf: csrfFrom(setup), code: await codeAt(secret!) })
    .expect(200);
  const codes = codesFrom(done);
  expect(codes).toHaveLength(10);
  expect(done.headers['cache-control']).toBe('private, no-store');
  return { secret: secret!, codes };
}

/** Password step from a fresh agent: returns it (its session pending the second factor). */
const passwordStep = (username: string) => signIn(world.server, username);

async function secondStep(agent: request.Agent, code: string): Promise<request.Response> {
  const page = await agent.get('/login/second-factor').expect(200);
  return agent
    .post('/login/second-factor')
    .type('form')
    .send({ _csrf: csrfFrom(page), code });
}

const actions = async (username: string) =>
  (
    await world.dataSource.query(
      `SELECT a.action, a.details FROM audit_events a JOIN users u ON u.id = a.user_id
        WHERE u.username = $1 ORDER BY a.created_at, a.id`,
      [username],
    )
  ).map((r: { action: string }) => r.action) as string[];

describe('TOTP enrolment and the second sign-in step', () => {
  it('stores the secret encrypted, then requires a code at sign-in; a code works once', async () => {
    const user = await newUser();
    const { secret } = await enrol(user);
    const [row] = await world.dataSource.query(
      `SELECT t.* FROM mfa_totp t JOIN users u ON u.id = t.user_id WHERE u.username = $1`,
      [user.username],
    );
    expect(row.activated_at).not.toBeNull();
    for (const column of ['key_ref', 'wrapped_key', 'secret_ciphertext'])
      expect(Buffer.from(String(row[column]))).not.toContain(secret);
    expect((row.secret_ciphertext as Buffer).includes(Buffer.from(secret))).toBe(false);

    const { agent, res } = await passwordStep(user.username);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login/second-factor');
    const pendingCookie = sessionCookie(res)!;
    await agent.get('/home').expect(303).expect('Location', '/login');

    const wrong = await secondStep(agent, '000000');
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('That code is not valid');

    // The step the activation used is spent: the next step's code signs in.
    const code = await codeAt(secret, 1);
    const ok = await secondStep(agent, code);
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/home');
    const signedIn = sessionCookie(ok)!;
    expect(signedIn).not.toBe(pendingCookie);
    await agent.get('/home').expect(200);
    // The pending session id died with the second step.
    await request(world.server).get('/home').set('Cookie', pendingCookie).expect(303);

    // The same code again (a replay) is refused in a new sign-in.
    const again = await passwordStep(user.username);
    expect((await secondStep(again.agent, code)).status).toBe(401);

    const seen = await actions(user.username);
    expect(seen).toEqual(
      expect.arrayContaining(['mfa.totp_setup_started', 'mfa.totp_enabled', 'mfa.failed', 'mfa.succeeded']),
    );
    expect(seen.filter((a) => a === 'mfa.failed')).toHaveLength(2);
  });

  it('refuses activation with a wrong code, leaves TOTP off, and refuses a second set-up over an active one', async () => {
    const user = await newUser();
    const page = await user.agent.get('/account/security');
    await user.agent
      .post('/account/security/totp/setup')
      .type('form')
      .send({ _csrf: csrfFrom(page) })
      .expect(303);
    const setup = await user.agent.get('/account/security');
    const bad = await user.agent
      .post('/account/security/totp/activate')
      .type('form')
      .send({ _csrf: csrfFrom(setup), code: '12345' });
    expect(bad.status).toBe(400);
    const wrong = await user.agent
      .post('/account/security/totp/activate')
      .type('form')
      .send({
        _csrf: csrfFrom(setup),
        code: (await codeAt(secretFrom(setup)!)) === '000000' ? '111111' : '000000',
      });
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('That code is not valid');
    // Still no second step at sign-in.
    expect((await passwordStep(user.username)).res.headers.location).toBe('/home');

    const { secret } = await (async () => {
      const secret = secretFrom(setup)!;
      await user.agent
        .post('/account/security/totp/activate')
        .type('form')
        .send({ _csrf: csrfFrom(setup), code: await codeAt(secret) })
        .expect(200);
      return { secret };
    })();
    const again = await user.agent
      .post('/account/security/totp/setup')
      .type('form')
      .send({ _csrf: csrfFrom(setup) });
    expect(again.status).toBe(409);
    // The factor kept its secret.
    const { agent } = await passwordStep(user.username);
    expect((await secondStep(agent, await codeAt(secret, 1))).status).toBe(303);
  });

  it('throttles wrong codes per account like passwords (429 with Retry-After)', async () => {
    const user = await newUser();
    await enrol(user);
    const { agent } = await passwordStep(user.username);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await secondStep(agent, '000000')).status);
    expect(statuses.slice(0, 4)).toEqual([401, 401, 401, 401]);
    expect(statuses[4]).toBe(429);
    const refused = await secondStep(agent, '000000');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.text).toContain('Too many failed sign-in attempts');
    expect(await actions(user.username)).toContain('mfa.throttled');
  });

  it('expires the pending state after 5 minutes', async () => {
    const user = await newUser();
    await enrol(user);
    const { agent, res } = await passwordStep(user.username);
    const sid = decodeURIComponent(sessionCookie(res)!.split('=')[1]!).slice(2).split('.')[0]!;
    const key = `${world.config.redis.prefix}:sess:${sid}`;
    const client = createRedisClient(world.config.redis.url);
    await client.connect();
    try {
      const stored = JSON.parse((await client.get(key))!);
      stored.mfaPending.since -= 5 * 60_000 + 1000;
      await client.set(key, JSON.stringify(stored), 'KEEPTTL');
    } finally {
      client.disconnect();
    }
    await agent.get('/login/second-factor').expect(303).expect('Location', '/login');
  });
});

describe('recovery codes', () => {
  it('sign in once each, are audited and shown, and regenerating invalidates the old set', async () => {
    const user = await newUser();
    const { secret, codes } = await enrol(user);
    const first = await passwordStep(user.username);
    const used = await secondStep(first.agent, codes[0]!.toUpperCase());
    expect(used.status).toBe(303);
    const home = await first.agent.get('/home').expect(200);
    expect(home.text).toContain('recovery code');
    const page = await first.agent.get('/account/security').expect(200);
    expect(page.text).toContain('data-testid="recovery-left">9<');

    const second = await passwordStep(user.username);
    expect((await secondStep(second.agent, codes[0]!)).status).toBe(401);
    expect(await actions(user.username)).toContain('mfa.recovery_code_used');

    const regenerated = await first.agent
      .post('/account/security/recovery-codes')
      .type('form')
      .send({ _csrf: csrfFrom(page), regenerateCode: await codeAt(secret, 1) })
      .expect(200);
    const fresh = codesFrom(regenerated);
    expect(fresh).toHaveLength(10);
    const third = await passwordStep(user.username);
    expect((await secondStep(third.agent, codes[1]!)).status).toBe(401);
    const fourth = await passwordStep(user.username);
    expect((await secondStep(fourth.agent, fresh[0]!)).status).toBe(303);
    expect(await actions(user.username)).toContain('mfa.recovery_codes_regenerated');
  });
});

describe('turning TOTP off', () => {
  it('needs the password and a current code', async () => {
    const user = await newUser();
    const { secret } = await enrol(user);
    const page = await user.agent.get('/account/security');
    const noPassword = await user.agent
      .post('/account/security/totp/disable')
      .type('form')
      .send({ _csrf: csrfFrom(page), password: 'wrong password here', disableCode: await codeAt(secret, 1) });
    expect(noPassword.status).toBe(400);
    expect(noPassword.text).toContain('Your current password is not correct.');
    const noCode = await user.agent
      .post('/account/security/totp/disable')
      .type('form')
      .send({ _csrf: csrfFrom(page), password: TEST_PASSWORD, disableCode: '000000' });
    expect(noCode.status).toBe(400);
    await user.agent
      .post('/account/security/totp/disable')
      .type('form')
      .send({ _csrf: csrfFrom(page), password: TEST_PASSWORD, disableCode: await codeAt(secret, 1) })
      .expect(303);
    expect((await passwordStep(user.username)).res.headers.location).toBe('/home');
    const rows = await world.dataSource.query(
      `SELECT 1 FROM mfa_recovery_codes r JOIN users u ON u.id = r.user_id WHERE u.username = $1
        UNION ALL SELECT 1 FROM mfa_totp t JOIN users u ON u.id = t.user_id WHERE u.username = $1`,
      [user.username],
    );
    expect(rows).toHaveLength(0);
    expect(await actions(user.username)).toEqual(
      expect.arrayContaining(['mfa.totp_disable_failed', 'mfa.totp_disabled']),
    );
  });
});

describe('npm run reset-mfa', () => {
  it("removes a user's factor and recovery codes, audited, so the password alone signs in", async () => {
    const user = await newUser();
    const { codes } = await enrol(user);
    expect(await resetMfa(world.config, user.username.toUpperCase())).toBe(true);
    expect((await passwordStep(user.username)).res.headers.location).toBe('/home');
    const left = await world.dataSource.query(
      `SELECT 1 FROM mfa_recovery_codes r JOIN users u ON u.id = r.user_id WHERE u.username = $1`,
      [user.username],
    );
    expect(left).toHaveLength(0);
    expect(codes).toHaveLength(10);
    expect(await actions(user.username)).toContain('mfa.reset');
    expect(await resetMfa(world.config, user.username)).toBe(false);
    await expect(resetMfa(world.config, `nobody_${world.id}`)).rejects.toThrow(/No user named/);
  });
});

describe('a session pending its second factor', () => {
  it('gets nothing but the second-factor page: pages, API, upload, download, socket handshake', async () => {
    const user = await newUser();
    const upload = await request(world.server)
      .post('/api/v1/uploads')
      .set(user.auth)
      .attach('file', Buffer.from('hello'), 'a.txt');
    expect(upload.status).toBe(202);
    const fileId = upload.body.files[0].id as string;
    await enrol(user);
    const { agent, res } = await passwordStep(user.username);
    const cookie = sessionCookie(res)!;
    const page = await agent.get('/login/second-factor').expect(200);
    const csrf = csrfFrom(page);
    for (const path of ['/home', '/account', '/account/security', '/activity'])
      await agent.get(path).expect(303).expect('Location', '/login');
    await agent.get('/api/v1/files').expect(401);
    await agent.get(`/api/v1/files/${fileId}/content`).expect(401);
    await agent.get('/api/v1/tokens').expect(401);
    await agent
      .post('/api/v1/uploads')
      .set('X-CSRF-Token', csrf)
      .attach('file', Buffer.from('x'), 'b.txt')
      .expect(401);
    await agent
      .post(`/api/v1/tus`)
      .set('Tus-Resumable', '1.0.0')
      .set('Upload-Length', '1')
      .set('X-CSRF-Token', csrf)
      .expect(401);
    const socket = io(world.base, {
      transports: ['websocket'],
      extraHeaders: { Cookie: cookie, Origin: ORIGIN },
      reconnection: false,
      forceNew: true,
    });
    const outcome = await new Promise<string>((resolve) => {
      socket.once('connect', () => resolve('connected'));
      socket.once('connect_error', (error) => resolve(`refused: ${error.message}`));
    });
    socket.disconnect();
    expect(outcome).toMatch(/^refused/);
  });
});

describe('POST /api/v1/tokens for an account with two-factor sign-in', () => {
  it('requires `otp`, refuses a wrong one, accepts a current code', async () => {
    const user = await newUser();
    const { secret } = await enrol(user);
    const missing = await request(world.server)
      .post('/api/v1/tokens')
      .send({ username: user.username, password: TEST_PASSWORD });
    expect(missing.status).toBe(401);
    expect(missing.body.message).toContain('otp');
    const wrong = await request(world.server)
      .post('/api/v1/tokens')
      .send({ username: user.username, password: TEST_PASSWORD, otp: '000000' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.message).toContain('otp');
    const ok = await request(world.server)
      .post('/api/v1/tokens')
      .send({ username: user.username, password: TEST_PASSWORD, otp: await codeAt(secret, 1) });
    expect(ok.status).toBe(201);
    await request(world.server)
      .get('/api/v1/files')
      .set('Authorization', `Bearer ${ok.body.token}`)
      .expect(200);
    // Tokens made before MFA was turned on keep working: a separate credential (docs/security.md 30).
    await request(world.server).get('/api/v1/files').set(user.auth).expect(200);
  });
});

void formCookie;
