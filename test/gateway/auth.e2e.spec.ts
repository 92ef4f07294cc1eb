import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserRepository } from '#common';
import { csrfFrom, formCookie, sessionCookie } from '../support/http.js';
import { ROOT } from '../support/paths.js';
import { createWorld, type World } from '../support/world.js';

let world: World;
let app: NestExpressApplication;
let counter = 0;

const PASSWORD = 'correct horse battery staple';

/** A unique username per test, since throttling and uniqueness are per account. */
function uniqueName(prefix = 'user'): string {
  counter += 1;
  return `${prefix}${counter}_${world.id}`;
}

/** Posts the registration form with these fields and the page's CSRF token. */
async function submitRegistration(agent: request.Agent, fields: Record<string, string>) {
  const page = await agent.get('/register').expect(200);
  return agent
    .post('/register')
    .type('form')
    .send({ ...fields, _csrf: csrfFrom(page) });
}

async function register(agent: request.Agent, username: string, password = PASSWORD) {
  return submitRegistration(agent, { username, email: `${username}@example.test`, password });
}

async function login(agent: request.Agent, username: string, password = PASSWORD, ip?: string) {
  const page = await agent.get('/login');
  const req = agent.post('/login').type('form');
  if (ip) req.set('X-Forwarded-For', ip);
  return req.send({ username, password, _csrf: csrfFrom(page) });
}

beforeAll(async () => {
  world = await createWorld({ env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_MAX_FAILURES_PER_IP: '6' } });
  app = world.app;
});

afterAll(async () => {
  await world?.close();
});

describe('accounts and sessions', () => {
  it('redirects / to /login for visitors and to /home once logged in', async () => {
    const agent = request.agent(app.getHttpServer());
    await agent.get('/').expect(303).expect('Location', '/login');
    await agent.get('/home').expect(303).expect('Location', '/login');
    const res = await register(agent, uniqueName());
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/home');
    await agent.get('/').expect(303).expect('Location', '/home');
  });

  it('registers, logs in, shows the dashboard and logs out', async () => {
    const agent = request.agent(app.getHttpServer());
    const username = uniqueName();
    await register(agent, username).then((r) => expect(r.status).toBe(303));
    const home = await agent.get('/home').expect(200);
    expect(home.text).toContain(username);
    expect(home.text).toContain('data-testid="empty-state"');

    await agent
      .post('/logout')
      .type('form')
      .send({ _csrf: csrfFrom(home) })
      .expect(303)
      .expect('Location', '/login');
    await agent.get('/home').expect(303);

    const res = await login(agent, username);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/home');
    await agent.get('/home').expect(200);
  });

  it('rejects a username that differs only in case', async () => {
    const username = uniqueName('Case');
    await register(request.agent(app.getHttpServer()), username).then((r) => expect(r.status).toBe(303));
    const res = await register(request.agent(app.getHttpServer()), username.toUpperCase());
    expect(res.status).toBe(409);
    expect(res.text).toContain('That username is already taken');
  });

  it('explains invalid registration input and stores nothing', async () => {
    const agent = request.agent(app.getHttpServer());
    const bad = await submitRegistration(agent, {
      username: 'a/b',
      email: 'not-an-email',
      password: 'short',
    });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Username must be 3-80 characters');
    expect(bad.text).toContain('Enter a valid email address.');
    const weak = await register(agent, uniqueName(), 'password123');
    expect(weak.status).toBe(400);
    expect(weak.text).toContain('most common');
    const short = await register(agent, uniqueName(), 'seven77');
    expect(short.status).toBe(400);
    expect(short.text).toContain('at least 8 characters');
    expect(await app.get(UserRepository).findByUsername('a/b')).toBeNull();
  });

  it('flags every empty field of the registration form, the password too', async () => {
    const empty = await submitRegistration(request.agent(app.getHttpServer()), {
      username: '',
      email: '',
      password: '',
    });
    expect(empty.status).toBe(400);
    for (const name of ['username', 'email', 'password']) {
      expect(empty.text).toMatch(new RegExp(`<input id="${name}"[^>]*class="form-control is-invalid"`));
    }
    expect(empty.text).toContain(
      '<div id="password-error" class="invalid-feedback">Password is required.</div>',
    );
  });

  it('accepts a 256-character passphrase and refuses 257 rather than truncating', async () => {
    const long = 'correct horse battery staple '.repeat(10).slice(0, 256);
    const username = uniqueName();
    const agent = request.agent(app.getHttpServer());
    await register(agent, username, long).then((r) => expect(r.status).toBe(303));
    const tooLong = await register(request.agent(app.getHttpServer()), uniqueName(), 'y'.repeat(257));
    expect(tooLong.status).toBe(400);
    expect(tooLong.text).toContain('at most 256 characters');
    // The full passphrase is what counts: a prefix does not log in.
    const prefix = await login(request.agent(app.getHttpServer()), username, long.slice(0, 255));
    expect(prefix.status).toBe(401);
  });

  it('stores argon2id hashes with at least the OWASP minimum parameters', async () => {
    const username = uniqueName();
    await register(request.agent(app.getHttpServer()), username);
    const user = await app.get(UserRepository).findByUsername(username);
    const [, algorithm, version, params] = user!.passwordHash.split('$');
    expect(algorithm).toBe('argon2id');
    expect(version).toBe('v=19');
    const { m, t, p } = Object.fromEntries(params!.split(',').map((kv) => [kv[0], Number(kv.slice(2))]));
    expect(m).toBeGreaterThanOrEqual(19456);
    expect(t).toBeGreaterThanOrEqual(2);
    expect(p).toBeGreaterThanOrEqual(1);
  });

  it('regenerates the session id at login and kills it at logout', async () => {
    const username = uniqueName();
    await register(request.agent(app.getHttpServer()), username);
    const server = app.getHttpServer();

    // GET /login stores no session (test/gateway/csrf.e2e.spec.ts), so the id a login must replace is
    // one the store already holds: here another account's live session, planted in the cookie jar.
    const planter = uniqueName();
    await register(request.agent(server), planter);
    const planterPage = await request(server).get('/login').expect(200);
    const planted = await request(server)
      .post('/login')
      .set('Cookie', formCookie(planterPage)!)
      .type('form')
      .send({ username: planter, password: PASSWORD, _csrf: csrfFrom(planterPage) })
      .expect(303);
    const preLogin = sessionCookie(planted)!;
    expect(preLogin).toBeDefined();
    const loginPage = await request(server).get('/home').set('Cookie', preLogin).expect(200);
    const res = await request(server)
      .post('/login')
      .set('Cookie', preLogin)
      .type('form')
      .send({ username, password: PASSWORD, _csrf: csrfFrom(loginPage) })
      .expect(303);
    const postLogin = sessionCookie(res)!;
    expect(postLogin).toBeDefined();
    expect(postLogin).not.toBe(preLogin);

    // The pre-login id is not an authenticated session (any more).
    await request(server).get('/home').set('Cookie', preLogin).expect(303);
    const home = await request(server).get('/home').set('Cookie', postLogin).expect(200);

    await request(server)
      .post('/logout')
      .set('Cookie', postLogin)
      .type('form')
      .send({ _csrf: csrfFrom(home) })
      .expect(303);
    // Replaying the old cookie after logout does not work: the server session is gone.
    await request(server).get('/home').set('Cookie', postLogin).expect(303).expect('Location', '/login');
  });

  it('sets HttpOnly, SameSite=Lax session cookies and never exposes them to scripts', async () => {
    const username = uniqueName();
    await register(request.agent(app.getHttpServer()), username);
    const page = await request(app.getHttpServer()).get('/login');
    const signedIn = await request(app.getHttpServer())
      .post('/login')
      .set('Cookie', formCookie(page)!)
      .type('form')
      .send({ username, password: PASSWORD, _csrf: csrfFrom(page) })
      .expect(303);
    // The session cookie (set at sign-in) and the anonymous forms' CSRF cookie (set by GET /login).
    for (const [res, name] of [
      [signedIn, 'tess.sid='],
      [page, 'tess.csrf='],
    ] as const) {
      const cookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith(name))!;
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/SameSite=Lax/i);
      expect(cookie).not.toMatch(/Secure/i); // test env is plain HTTP; production forces Secure (config spec)
    }
  });
});

describe('CSRF', () => {
  it('refuses a login form posted without the token', async () => {
    const username = uniqueName();
    await register(request.agent(app.getHttpServer()), username);
    const agent = request.agent(app.getHttpServer());
    await agent.get('/login');
    const res = await agent.post('/login').type('form').send({ username, password: PASSWORD });
    expect(res.status).toBe(403);
    expect(res.text).toContain('CSRF');
  });

  it('refuses logout with a wrong token and keeps the session', async () => {
    const agent = request.agent(app.getHttpServer());
    await register(agent, uniqueName());
    await agent.post('/logout').type('form').send({ _csrf: 'forged' }).expect(403);
    await agent.get('/home').expect(200);
  });

  it('refuses a session-authenticated API call without the header and accepts it with the header', async () => {
    const agent = request.agent(app.getHttpServer());
    await register(agent, uniqueName());
    const home = await agent.get('/home');
    const unknownId = '2b1c5d1e-4a8f-4c3a-9d3e-1f2a3b4c5d6e';
    await agent.delete(`/api/v1/tokens/${unknownId}`).expect(403);
    const res = await agent.delete(`/api/v1/tokens/${unknownId}`).set('X-CSRF-Token', csrfFrom(home));
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'No such token.' });
  });
});

describe('login throttling', () => {
  it('answers identically for an unknown user and a wrong password', async () => {
    const username = uniqueName();
    await register(request.agent(app.getHttpServer()), username);
    const wrong = await login(request.agent(app.getHttpServer()), username, 'not the password', '10.1.0.1');
    const unknown = await login(
      request.agent(app.getHttpServer()),
      uniqueName('ghost'),
      'not the password',
      '10.1.0.2',
    );
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const message = (t: string) => /data-testid="login-error">([^<]*)</.exec(t)?.[1];
    expect(message(wrong.text)).toBe('Invalid username or password.');
    expect(message(unknown.text)).toBe(message(wrong.text));
  });

  it('does not lock an account out after failures from other IPs: the right password still signs in', async () => {
    const username = uniqueName();
    await register(request.agent(app.getHttpServer()), username);
    for (const ip of ['10.2.0.1', '10.2.0.2', '10.2.0.3']) {
      expect((await login(request.agent(app.getHttpServer()), username, 'wrong password', ip)).status).toBe(
        401,
      );
    }
    // Past the per-account limit the username is slowed (test/gateway/login-protection.e2e.spec.ts), not locked.
    const owner = await login(request.agent(app.getHttpServer()), username, PASSWORD, '10.2.0.4');
    expect(owner.status).toBe(303);
    expect(owner.headers.location).toBe('/home');
  });

  it('blocks an IP that fails across many accounts, without blocking other IPs', async () => {
    const ip = '10.3.0.1';
    for (let i = 0; i < 6; i++) {
      expect(
        (await login(request.agent(app.getHttpServer()), uniqueName('spray'), 'nope nope', ip)).status,
      ).toBe(401);
    }
    const username = uniqueName();
    await register(request.agent(app.getHttpServer()), username);
    expect((await login(request.agent(app.getHttpServer()), username, PASSWORD, ip)).status).toBe(429);
    expect((await login(request.agent(app.getHttpServer()), username, PASSWORD, '10.3.0.2')).status).toBe(
      303,
    );
  });
});

describe('bearer tokens', () => {
  it('creates a token once, authenticates with it, and stops after revocation', async () => {
    const username = uniqueName();
    await register(request.agent(app.getHttpServer()), username);
    const server = app.getHttpServer();
    const created = await request(server)
      .post('/api/v1/tokens')
      .send({ username, password: PASSWORD, name: 'ci' })
      .expect(201);
    expect(created.body).toMatchObject({ name: 'ci', id: expect.any(String), createdAt: expect.any(String) });
    expect(created.body.token).toMatch(/^tess_[A-Za-z0-9_-]{43}$/);
    const auth = `Bearer ${created.body.token}`;

    const list = await request(server).get('/api/v1/tokens').set('Authorization', auth).expect(200);
    expect(list.body.tokens).toHaveLength(1);
    // Judged by the token alone: no session is made or rolled for it.
    expect(list.headers['set-cookie']).toBeUndefined();
    expect(JSON.stringify(list.body)).not.toContain(created.body.token);

    await request(server).delete(`/api/v1/tokens/${created.body.id}`).set('Authorization', auth).expect(204);
    const after = await request(server).get('/api/v1/tokens').set('Authorization', auth).expect(401);
    expect(after.body.message).toContain('invalid or has been revoked');
  });

  it('records when a token was last used, without a database write on every request', async () => {
    const username = uniqueName();
    await register(request.agent(app.getHttpServer()), username);
    const server = app.getHttpServer();
    const created = await request(server)
      .post('/api/v1/tokens')
      .send({ username, password: PASSWORD })
      .expect(201);
    const auth = `Bearer ${created.body.token}`;
    const lastUsed = async () =>
      (await request(server).get('/api/v1/tokens').set('Authorization', auth).expect(200)).body.tokens[0]
        .lastUsedAt as string | null;

    const first = await lastUsed();
    expect(first).not.toBeNull();
    expect(Date.now() - Date.parse(first!)).toBeLessThan(60_000);
    expect(await lastUsed()).toBe(first);

    // An hour later, the next request refreshes it.
    await app
      .get(DataSource)
      .query(`UPDATE api_tokens SET last_used_at = now() - interval '1 hour' WHERE id = $1`, [
        created.body.id,
      ]);
    const hourAgo = Date.now() - 3_600_000;
    const refreshed = await lastUsed();
    expect(Date.parse(refreshed!)).toBeGreaterThan(hourAgo + 3_000_000);
  });

  it('refuses bad credentials, malformed bodies and missing authentication with JSON errors', async () => {
    const server = app.getHttpServer();
    const bad = await request(server)
      .post('/api/v1/tokens')
      .send({ username: uniqueName('ghost'), password: 'x' });
    expect(bad.status).toBe(401);
    expect(bad.body).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: 'Invalid username or password.',
    });
    const malformed = await request(server)
      .post('/api/v1/tokens')
      .set('Content-Type', 'application/json')
      .send('{"a":');
    expect(malformed.status).toBe(400);
    expect(malformed.body.message).toContain('not valid JSON');
    const missing = await request(server).post('/api/v1/tokens').send({});
    expect(missing.status).toBe(400);
    expect(missing.body.message).toContain('username');
    await request(server).get('/api/v1/tokens').expect(401);
    await request(server).get('/api/v1/tokens').set('Authorization', 'Bearer tess_nope').expect(401);
  });

  it("cannot revoke another user's token (404, no existence leak)", async () => {
    const server = app.getHttpServer();
    const [a, b] = [uniqueName(), uniqueName()];
    await register(request.agent(server), a);
    await register(request.agent(server), b);
    const ta = (await request(server).post('/api/v1/tokens').send({ username: a, password: PASSWORD })).body;
    const tb = (await request(server).post('/api/v1/tokens').send({ username: b, password: PASSWORD })).body;
    await request(server)
      .delete(`/api/v1/tokens/${ta.id}`)
      .set('Authorization', `Bearer ${tb.token}`)
      .expect(404);
    await request(server).get('/api/v1/tokens').set('Authorization', `Bearer ${ta.token}`).expect(200);
  });
});

describe('pages, headers and health', () => {
  it('serves a friendly 404 page to browsers and JSON to API clients', async () => {
    const html = await request(app.getHttpServer())
      .get('/no/such/page')
      .set('Accept', 'text/html')
      .expect(404);
    expect(html.text).toContain('Page not found');
    const json = await request(app.getHttpServer()).get('/api/v1/nothing').expect(404);
    expect(json.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
  });

  it('offers a working Log out on the 404 page of a signed-in user', async () => {
    const username = uniqueName();
    const agent = request.agent(app.getHttpServer());
    await register(agent, username).then((r) => expect(r.status).toBe(303));
    const page = await agent.get('/no/such/page').set('Accept', 'text/html').expect(404);
    expect(page.text).toContain(username);
    expect(page.text).toContain('action="/logout"');
    await agent
      .post('/logout')
      .type('form')
      .send({ _csrf: csrfFrom(page) })
      .expect(303);
    await agent.get('/home').expect(303);
  });

  it('sends a CSP without inline script and forbids framing', async () => {
    const res = await request(app.getHttpServer()).get('/login').expect(200);
    const csp = res.headers['content-security-policy'] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.text).not.toMatch(/<script>(?!<\/script>)/);
    expect(res.text).not.toMatch(/https?:\/\/(cdn|unpkg|cdnjs)/);
  });

  it('serves Bootstrap and its icons from the app itself', async () => {
    await request(app.getHttpServer()).get('/assets/bootstrap/css/bootstrap.min.css').expect(200);
    await request(app.getHttpServer()).get('/assets/bootstrap-icons/bootstrap-icons.min.css').expect(200);
  });

  it('serves tus-js-client and hash-wasm itself; only the hashing worker may compile WebAssembly', async () => {
    for (const file of ['/assets/tus-js-client/tus.min.js', '/assets/hash-wasm/sha256.umd.min.js']) {
      const res = await request(app.getHttpServer()).get(file).expect(200);
      expect(res.headers['content-type'], file).toMatch(/^(text|application)\/javascript\b/);
      expect(res.headers['content-security-policy'], file).not.toContain('wasm-unsafe-eval');
    }
    const worker = await request(app.getHttpServer())
      .get('/static/js/dashboard/sha256.worker.js')
      .expect(200);
    expect(worker.headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; base-uri 'none'; frame-ancestors 'none'",
    );
    const home = await request(app.getHttpServer()).get('/login').expect(200);
    expect(home.headers['content-security-policy']).not.toContain('wasm');
  });

  it('serves every dashboard script with a JavaScript type, as module scripts require under nosniff', async () => {
    const scripts = readdirSync(join(ROOT, 'apps', 'gateway', 'public', 'js'), {
      recursive: true,
      encoding: 'utf8',
    })
      .filter((file) => file.endsWith('.js'))
      .sort();
    expect(scripts).toEqual(expect.arrayContaining(['dashboard.js', 'dashboard/api-client.js']));
    for (const file of [...scripts.map((f) => `/static/js/${f}`), '/assets/socket.io/socket.io.esm.min.js']) {
      const res = await request(app.getHttpServer()).get(file).expect(200);
      expect(res.headers['content-type'], file).toMatch(/^(text|application)\/javascript\b/);
    }
  });

  it('reports liveness and readiness', async () => {
    await request(app.getHttpServer()).get('/healthz').expect(200, { status: 'ok' });
    const ready = await request(app.getHttpServer()).get('/readyz').expect(200);
    expect(ready.body.checks).toEqual({ database: 'ok', redis: 'ok', objectStore: 'ok' });
  });
});
