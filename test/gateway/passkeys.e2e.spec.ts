import { randomBytes } from 'node:crypto';
import { generate } from 'otplib';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MfaRepository } from '#common';
import { MfaService } from '../../apps/gateway/src/auth/mfa.service.js';
import { csrfFrom } from '../support/http.js';
import { createUser, signIn, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * The passkey routes' edges without a browser (docs/security.md item 30a; the WebAuthn ceremonies
 * themselves run in test/browser/passkeys.e2e.spec.ts): options bound to PUBLIC_URL, malformed or
 * unasked-for answers refused without a row, another user's passkey not found, and an account whose only
 * factor is a passkey: the second step offers the passkey and recovery codes, and the token endpoint
 * takes a recovery code. Passkey rows are stored here through the repository, as a registration would.
 */

let world: World;
let counter = 0;

beforeAll(async () => {
  world = await createWorld({
    env: {
      PUBLIC_URL: 'https://files.example.test',
      ALLOWED_ORIGINS: 'https://files.example.test',
      LOGIN_MAX_FAILURES_PER_PAIR: '5',
      LOGIN_MAX_FAILURES_PER_IP: '1000',
    },
  });
});

afterAll(async () => {
  await world?.close();
});

async function newUser(): Promise<TestUser> {
  counter += 1;
  return createUser(world.server, `pk${counter}_${world.id}`);
}

const userId = async (username: string) => (await world.users.findByUsername(username))!.id;

/** A passkey row as a verified registration stores it; the account's first factor gets recovery codes. */
async function storePasskey(
  user: TestUser,
  name = 'Desk key',
): Promise<{ id: string; codes: string[] | null }> {
  const id = await userId(user.username);
  const row = await world.app.get(MfaRepository).addPasskey({
    userId: id,
    credentialId: randomBytes(32).toString('base64url'),
    publicKey: randomBytes(77),
    counter: 0,
    transports: ['usb'],
    name,
    deviceType: 'singleDevice',
    backedUp: false,
  });
  const codes = await world.app.get(MfaService).recoveryCodesForFirstPasskey(id);
  return { id: row!.id, codes };
}

const json = (agent: request.Agent, csrf: string, path: string, body: unknown) =>
  agent
    .post(path)
    .set('X-CSRF-Token', csrf)
    .set('Accept', 'application/json')
    .set('Content-Type', 'application/json')
    .send(typeof body === 'string' ? body : JSON.stringify(body));

const registration = {
  name: 'Laptop',
  response: {
    id: 'AAAA',
    rawId: 'AAAA',
    type: 'public-key',
    clientExtensionResults: {},
    response: { clientDataJSON: 'e30', attestationObject: 'oA' },
  },
};

const passkeyCount = async (username: string) =>
  (
    await world.dataSource.query(
      'SELECT count(*)::int AS n FROM mfa_passkeys p JOIN users u ON u.id = p.user_id WHERE u.username = $1',
      [username],
    )
  )[0].n as number;

describe('passkey registration routes', () => {
  it('give options for PUBLIC_URL and refuse malformed, unasked-for and cross-site answers without a row', async () => {
    const user = await newUser();
    const page = await user.agent.get('/account/security').expect(200);
    expect(page.text).toContain('src="/assets/simplewebauthn/index.umd.min.js"');
    const script = await request(world.server).get('/assets/simplewebauthn/index.umd.min.js').expect(200);
    expect(script.text).toContain('SimpleWebAuthnBrowser');
    const csrf = csrfFrom(page);

    await user.agent.post('/account/security/passkeys/options').send({}).expect(403);
    const options = await json(user.agent, csrf, '/account/security/passkeys/options', {}).expect(200);
    expect(options.body.rp).toEqual({ name: 'TESS', id: 'files.example.test' });
    expect(options.body.user.name).toBe(user.username);
    expect(options.body.challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(options.body.excludeCredentials).toEqual([]);

    await json(user.agent, csrf, '/account/security/passkeys', '{"name": ').expect(400);
    const noName = await json(user.agent, csrf, '/account/security/passkeys', { ...registration, name: '' });
    expect(noName.status).toBe(400);
    expect(noName.body.message).toContain('Name the passkey.');
    await json(user.agent, csrf, '/account/security/passkeys', {
      ...registration,
      response: { ...registration.response, type: 'password' },
    }).expect(400);
    await json(user.agent, csrf, '/account/security/passkeys', {
      name: 'x'.repeat(101),
      response: {},
    }).expect(400);
    await json(user.agent, csrf, '/account/security/passkeys', {
      ...registration,
      blob: 'x'.repeat(70_000),
    }).expect(413);

    // A well-formed answer that does not verify spends the challenge: the next one finds none.
    const bogus = await json(user.agent, csrf, '/account/security/passkeys', registration).expect(422);
    expect(bogus.body.message).toContain('could not be verified');
    const again = await json(user.agent, csrf, '/account/security/passkeys', registration).expect(422);
    expect(again.body.message).toContain('expired or was already answered');
    // A challenge answers only the session that asked for it.
    await json(user.agent, csrf, '/account/security/passkeys/options', {}).expect(200);
    const other = await newUser();
    const otherPage = await other.agent.get('/account/security');
    const stolen = await json(
      other.agent,
      csrfFrom(otherPage),
      '/account/security/passkeys',
      registration,
    ).expect(422);
    expect(stolen.body.message).toContain('expired or was already answered');
    expect(await passkeyCount(user.username)).toBe(0);
    expect(await passkeyCount(other.username)).toBe(0);
  });

  it("renames and removes only the user's own passkeys, removal with the password", async () => {
    const user = await newUser();
    const stranger = await newUser();
    const { id } = await storePasskey(user);
    const theirs = await storePasskey(stranger, 'Theirs');
    const page = await user.agent.get('/account/security').expect(200);
    expect(page.text).toContain('Desk key');
    const csrf = csrfFrom(page);
    const form = (path: string, body: Record<string, string>) =>
      user.agent
        .post(path)
        .type('form')
        .send({ _csrf: csrf, ...body });

    await form(`/account/security/passkeys/${theirs.id}/rename`, { passkeyName: 'Mine now' }).expect(404);
    await form('/account/security/passkeys/not-a-uuid/rename', { passkeyName: 'x' }).expect(400);
    const blank = await form(`/account/security/passkeys/${id}/rename`, { passkeyName: '   ' });
    expect(blank.status).toBe(400);
    await form(`/account/security/passkeys/${id}/rename`, { passkeyName: 'Front door key' })
      .expect(303)
      .expect('Location', '/account/security');
    expect((await user.agent.get('/account/security')).text).toContain('Front door key');

    await form(`/account/security/passkeys/${theirs.id}/remove`, { passkeyPassword: TEST_PASSWORD }).expect(
      404,
    );
    const noPassword = await form(`/account/security/passkeys/${id}/remove`, {});
    expect(noPassword.status).toBe(400);
    const wrong = await form(`/account/security/passkeys/${id}/remove`, {
      passkeyPassword: 'a wrong password',
    });
    expect(wrong.status).toBe(400);
    expect(wrong.text).toContain('Your current password is not correct.');
    expect(await passkeyCount(user.username)).toBe(1);
    await form(`/account/security/passkeys/${id}/remove`, { passkeyPassword: TEST_PASSWORD }).expect(303);
    expect(await passkeyCount(user.username)).toBe(0);
    expect(await passkeyCount(stranger.username)).toBe(1);
    const events = await world.dataSource.query(
      `SELECT a.action FROM audit_events a JOIN users u ON u.id = a.user_id
        WHERE u.username = $1 AND a.action LIKE 'mfa.passkey_%' ORDER BY a.created_at, a.id`,
      [user.username],
    );
    expect(events.map((e: { action: string }) => e.action)).toEqual([
      'mfa.passkey_renamed',
      'mfa.passkey_removed',
    ]);
  });
});

describe('an account whose only factor is a passkey', () => {
  it('gets the second step with the passkey and recovery codes, and a token for a recovery code', async () => {
    const user = await newUser();
    const { codes } = await storePasskey(user);
    expect(codes).toHaveLength(10);

    const agent = request.agent(world.server);
    const login = await agent.get('/login');
    await agent
      .post('/login')
      .type('form')
      .send({ username: user.username, password: TEST_PASSWORD, _csrf: csrfFrom(login) })
      .expect(303)
      .expect('Location', '/login/second-factor');
    const step = await agent.get('/login/second-factor').expect(200);
    expect(step.text).toContain('data-testid="passkey-sign-in"');
    expect(step.text).toContain('Or enter one of your recovery codes.');
    const options = await json(agent, csrfFrom(step), '/login/second-factor/passkey/options', {}).expect(200);
    expect(options.body.rpId).toBe('files.example.test');
    expect(options.body.allowCredentials).toHaveLength(1);
    // A passkey is never the whole sign-in: without a pending session (the password passed) the
    // passkey step answers 401, signed in or anonymous.
    await json(user.agent, user.csrf, '/login/second-factor/passkey/options', {}).expect(401);
    const anonymous = request.agent(world.server);
    const anonymousCsrf = csrfFrom(await anonymous.get('/login'));
    await json(anonymous, anonymousCsrf, '/login/second-factor/passkey/options', {}).expect(401);
    await json(anonymous, anonymousCsrf, '/login/second-factor/passkey', { response: {} }).expect(401);

    const token = (otp?: string) =>
      request(world.server)
        .post('/api/v1/tokens')
        .send({ username: user.username, password: TEST_PASSWORD, ...(otp ? { otp } : {}) });
    const missing = await token();
    expect(missing.status).toBe(401);
    expect(missing.body.message).toContain('recovery code');
    expect(missing.body.message).toContain('/account/security');
    expect((await token('123456')).status).toBe(401);
    expect((await token(codes![0])).status).toBe(201);
    expect((await token(codes![0])).status).toBe(401);

    // A recovery code also passes the second sign-in step.
    await agent
      .post('/login/second-factor')
      .type('form')
      .send({ _csrf: csrfFrom(step), code: codes![1] })
      .expect(303)
      .expect('Location', '/home');

    // New recovery codes take the password (there is no code to give).
    const page = await agent.get('/account/security').expect(200);
    expect(page.text).toContain('data-testid="recovery-left">8<');
    const wrong = await agent
      .post('/account/security/recovery-codes')
      .type('form')
      .send({ _csrf: csrfFrom(page), regeneratePassword: 'a wrong password' });
    expect(wrong.status).toBe(400);
    const fresh = await agent
      .post('/account/security/recovery-codes')
      .type('form')
      .send({ _csrf: csrfFrom(page), regeneratePassword: TEST_PASSWORD })
      .expect(200);
    expect([...fresh.text.matchAll(/data-testid="recovery-code">/g)]).toHaveLength(10);
    expect((await token(codes![2])).status).toBe(401);
  });
});

describe('passkeys beside an authenticator app', () => {
  it('keep the account two-factor and its recovery codes when the app is turned off', async () => {
    const user = await newUser();
    await storePasskey(user);
    const page = await user.agent.get('/account/security').expect(200);
    await user.agent
      .post('/account/security/totp/setup')
      .type('form')
      .send({ _csrf: csrfFrom(page) })
      .expect(303);
    const setup = await user.agent.get('/account/security').expect(200);
    const secret = /data-testid="totp-secret">([A-Z2-7]+)</.exec(setup.text)![1]!;
    const at = (steps: number) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + steps * 30 });
    const on = await user.agent
      .post('/account/security/totp/activate')
      .type('form')
      .send({ _csrf: csrfFrom(setup), code: await at(0) })
      .expect(200);
    const codes = [...on.text.matchAll(/data-testid="recovery-code">([0-9a-f-]+)</g)].map((m) => m[1]!);
    expect(codes).toHaveLength(10);
    await user.agent
      .post('/account/security/totp/disable')
      .type('form')
      .send({ _csrf: csrfFrom(setup), password: TEST_PASSWORD, disableCode: await at(1) })
      .expect(303);
    const after = await user.agent.get('/account/security').expect(200);
    expect(after.text).toContain('data-testid="recovery-left">10<');
    const { agent, res } = await signIn(world.server, user.username);
    expect(res.headers.location).toBe('/login/second-factor');
    const step = await agent.get('/login/second-factor').expect(200);
    await agent
      .post('/login/second-factor')
      .type('form')
      .send({ _csrf: csrfFrom(step), code: codes[0] })
      .expect(303)
      .expect('Location', '/home');
  });
});
