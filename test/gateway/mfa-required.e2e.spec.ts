import { generate } from 'otplib';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resetMfa } from '../../scripts/reset-mfa.js';
import { csrfFrom, formCookie } from '../support/http.js';
import { signIn, TEST_PASSWORD } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * MFA_REQUIRED=true (docs/security.md item 30b) against the real PostgreSQL, Redis and key provider:
 * an account without a second factor enrols at its next sign-in (new accounts right after registering),
 * the enrolment page is all its session reaches, the token endpoint refuses it with a readable message,
 * and recovery codes and reset-mfa keep anyone from being locked out.
 */

const ORIGIN = 'http://tess.test';
let world: World;
let counter = 0;

beforeAll(async () => {
  world = await createWorld({
    env: {
      MFA_REQUIRED: 'true',
      ALLOWED_ORIGINS: ORIGIN,
      LOGIN_MAX_FAILURES_PER_PAIR: '5',
      LOGIN_MAX_FAILURES_PER_IP: '1000',
    },
  });
});

afterAll(async () => {
  await world?.close();
});

const codeAt = (secret: string, steps = 0) =>
  generate({ secret, epoch: Math.floor(Date.now() / 1000) + steps * 30 });
const secretFrom = (res: request.Response) => /data-testid="totp-secret">([A-Z2-7]+)</.exec(res.text)?.[1];
const codesFrom = (res: request.Response) =>
  [...res.text.matchAll(/data-testid="recovery-code">([0-9a-f-]+)</g)].map((m) => m[1]!);

async function register(): Promise<{ username: string; agent: request.Agent; res: request.Response }> {
  counter += 1;
  const username = `req${counter}_${world.id}`;
  const agent = request.agent(world.server);
  const page = await agent.get('/register');
  const res = await agent
    .post('/register')
    .type('form')
    .send({ username, email: `${username}@example.test`, password: TEST_PASSWORD, _csrf: csrfFrom(page) });
  return { username, agent, res };
}

/** Enrols the pending agent with an authenticator app; returns the secret and the recovery codes. */
async function enrolTotp(agent: request.Agent): Promise<{ secret: string; codes: string[] }> {
  const page = await agent.get('/login/enrol').expect(200);
  const secret = secretFrom(page)!;
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  const done = await agent
    .post('/login/enrol')
    .type('form')
    .send({ _csrf: csrfFrom(page), code: await codeAt(secret) })
    .expect(200);
  const codes = codesFrom(done);
  expect(codes).toHaveLength(10);
  return { secret, codes };
}

const tokenFor = (username: string, otp?: string) =>
  request(world.server)
    .post('/api/v1/tokens')
    .send({ username, password: TEST_PASSWORD, ...(otp ? { otp } : {}) });

describe('MFA_REQUIRED=true', () => {
  it('sends a new account to the enrolment page, the only thing its session reaches, until a factor is on', async () => {
    const { username, agent, res } = await register();
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login/enrol');
    for (const path of ['/home', '/account', '/account/security', '/activity'])
      await agent.get(path).expect(303).expect('Location', '/login');
    await agent.get('/api/v1/files').expect(401);
    await agent.get('/api/v1/tokens').expect(401);
    await agent.get('/login/second-factor').expect(303).expect('Location', '/login/enrol');

    const refused = await tokenFor(username);
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain('requires two-factor sign-in');

    const page = await agent.get('/login/enrol').expect(200);
    expect(page.text).toContain('data-testid="enrol-required"');
    expect(page.headers['cache-control']).toBe('private, no-store');
    const wrong = await agent
      .post('/login/enrol')
      .type('form')
      .send({ _csrf: csrfFrom(page), code: '000000' });
    expect(wrong.status).toBe(400);
    await agent.get('/home').expect(303);

    const { secret } = await enrolTotp(agent);
    await agent.get('/home').expect(200);
    // The token endpoint now asks for the factor, like for any account with one.
    const noOtp = await tokenFor(username);
    expect(noOtp.status).toBe(401);
    expect(noOtp.body.message).toContain('otp');
    expect((await tokenFor(username, await codeAt(secret, 1))).status).toBe(201);

    const signedIn = await world.dataSource.query(
      `SELECT a.details FROM audit_events a JOIN users u ON u.id = a.user_id
        WHERE u.username = $1 AND a.action = 'login.succeeded'`,
      [username],
    );
    expect(signedIn.map((r: { details: { secondFactor: string } }) => r.details.secondFactor)).toEqual([
      'enrolled-totp',
    ]);
  });

  it('sends an existing account without a factor to enrolment at sign-in; the factor then signs it in', async () => {
    const { username } = await register();
    const { agent, res } = await signIn(world.server, username);
    expect(res.headers.location).toBe('/login/enrol');
    await agent.get('/home').expect(303);
    const { secret, codes } = await enrolTotp(agent);

    const again = await signIn(world.server, username);
    expect(again.res.headers.location).toBe('/login/second-factor');
    const page = await again.agent.get('/login/second-factor').expect(200);
    await again.agent
      .post('/login/second-factor')
      .type('form')
      .send({ _csrf: csrfFrom(page), code: await codeAt(secret, 1) })
      .expect(303)
      .expect('Location', '/home');

    // A lost device: a recovery code signs in (no lock-out)...
    const lost = await signIn(world.server, username);
    const lostPage = await lost.agent.get('/login/second-factor');
    await lost.agent
      .post('/login/second-factor')
      .type('form')
      .send({ _csrf: csrfFrom(lostPage), code: codes[0] })
      .expect(303)
      .expect('Location', '/home');
    // ...and the last factor cannot be turned off while the server requires one.
    const security = await lost.agent.get('/account/security').expect(200);
    const off = await lost.agent
      .post('/account/security/totp/disable')
      .type('form')
      .send({ _csrf: csrfFrom(security), password: TEST_PASSWORD, disableCode: codes[1] });
    expect(off.status).toBe(400);
    expect(off.text).toContain('requires two-factor sign-in');
    expect(
      await world.dataSource.query(
        'SELECT 1 FROM mfa_totp t JOIN users u ON u.id = t.user_id WHERE u.username = $1',
        [username],
      ),
    ).toHaveLength(1);

    // Lost codes too: the operator's reset sends the account back to enrolment, not out.
    expect(await resetMfa(world.config, username)).toBe(true);
    const reset = await signIn(world.server, username);
    expect(reset.res.headers.location).toBe('/login/enrol');
    await enrolTotp(reset.agent);
    await reset.agent.get('/home').expect(200);
  });

  it('expires the enrolment with the pending session and refuses a cross-site form post', async () => {
    const { agent } = await register();
    const page = await agent.get('/login/enrol').expect(200);
    // The CSRF token of a pending session lives in the form cookie: a post without it is refused.
    await request(world.server)
      .post('/login/enrol')
      .set('Cookie', formCookie(page) ?? '')
      .type('form')
      .send({ code: '123456' })
      .expect(403);
    await agent.post('/login/enrol/passkey/options').set('X-CSRF-Token', csrfFrom(page)).expect(200);
    const anonymous = request.agent(world.server);
    const login = await anonymous.get('/login');
    await anonymous
      .post('/login/enrol/passkey/options')
      .set('X-CSRF-Token', csrfFrom(login))
      .set('Accept', 'application/json')
      .expect(401);
    await anonymous.get('/login/enrol').expect(303).expect('Location', '/login');
  });
});
