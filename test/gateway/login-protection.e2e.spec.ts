import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PasswordService } from '../../apps/gateway/src/auth/password.service.js';
import { csrfFrom } from '../support/http.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Login protection (docs/security.md 10) through the real form and token API against the real Redis:
 * limits hold under concurrent bursts, and nobody can lock an account's owner out.
 */

const PAIR = 3;
const ADDRESS = 12;
const ACCOUNT = 8;
const REGISTRATIONS = 4;
const PASSWORD = 'correct horse battery staple';

let world: World;
let counter = 0;
let ipCounter = 0;

function uniqueName(prefix = 'user'): string {
  counter += 1;
  return `${prefix}${counter}_${world.id}`;
}

/** A fresh client address per call (the world trusts loopback proxies, so X-Forwarded-For is the address). */
function freshIp(): string {
  ipCounter += 1;
  return `10.${Math.floor(ipCounter / 250)}.${ipCounter % 250}.7`;
}

/** argon2 runs so far in the gateway, read from its Prometheus counter. */
async function argon2Runs(op: 'hash' | 'verify'): Promise<number> {
  const metric = await world.app.get(PasswordService).operations.get();
  return metric.values.find((v) => v.labels.op === op)?.value ?? 0;
}

async function auditCount(action: string, ip: string): Promise<number> {
  const [row] = await world.dataSource.query(
    'SELECT count(*)::int AS n FROM audit_events WHERE action = $1 AND ip = $2',
    [action, ip],
  );
  return row.n;
}

function token(username: string, password: string, ip: string) {
  return request(world.server).post('/api/v1/tokens').set('X-Forwarded-For', ip).send({ username, password });
}

/** Posts a form the way a browser does: from its page (for the CSRF token), from the client address `ip`. */
async function postForm(path: '/login' | '/register', ip: string, fields: Record<string, string>) {
  const agent = request.agent(world.server);
  const page = await agent.get(path).expect(200);
  return agent
    .post(path)
    .set('X-Forwarded-For', ip)
    .type('form')
    .send({ ...fields, _csrf: csrfFrom(page) });
}

const formLogin = (username: string, password: string, ip: string) =>
  postForm('/login', ip, { username, password });

const register = (username: string, ip: string, password = PASSWORD) =>
  postForm('/register', ip, { username, email: `${username}@example.test`, password });

async function newUser(): Promise<string> {
  const username = uniqueName();
  expect((await register(username, freshIp())).status).toBe(303);
  return username;
}

/** How many responses had each status, e.g. `{ 401: 3, 429: 97 }`. */
function statuses(responses: { status: number }[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const r of responses) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

const occurrences = (text: string, needle: string) => text.split(needle).length - 1;

beforeAll(async () => {
  world = await createWorld({
    env: {
      LOGIN_MAX_FAILURES_PER_PAIR: String(PAIR),
      LOGIN_MAX_FAILURES_PER_IP: String(ADDRESS),
      LOGIN_MAX_FAILURES_PER_ACCOUNT: String(ACCOUNT),
      LOGIN_ACCOUNT_MAX_DELAY: '3s',
      REGISTER_MAX_PER_IP: String(REGISTRATIONS),
    },
  });
});

afterAll(async () => {
  await world?.close();
});

describe('login protection', () => {
  it('verifies at most the pair limit of 100 concurrent wrong attempts, and the owner still signs in from elsewhere', async () => {
    const username = await newUser();
    const attacker = freshIp();
    const before = await argon2Runs('verify');
    const burst = await Promise.all(
      Array.from({ length: 100 }, () => token(username, 'wrong guess', attacker)),
    );
    expect(await argon2Runs('verify')).toBe(before + PAIR);
    expect(statuses(burst)).toEqual({ 401: PAIR, 429: 100 - PAIR });
    for (const blocked of burst.filter((r) => r.status === 429)) {
      expect(blocked.headers['retry-after']).toMatch(/^[1-9]\d*$/);
      expect(blocked.body.message).toContain('Too many failed sign-in attempts');
    }
    // Every refused attempt is audited, once.
    expect(await auditCount('login.throttled', attacker)).toBe(100 - PAIR);
    expect(await auditCount('login.failed', attacker)).toBe(PAIR);
    // Even the right password waits on the attacker's pair, but not from the owner's address.
    expect((await token(username, PASSWORD, attacker)).status).toBe(429);
    expect((await token(username, PASSWORD, freshIp())).status).toBe(201);
    expect((await formLogin(username, PASSWORD, freshIp())).status).toBe(303);
  });

  it('verifies at most the address limit of 100 concurrent guesses at different usernames on the form', async () => {
    const sprayer = freshIp();
    const agents = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const agent = request.agent(world.server);
        return { agent, csrf: csrfFrom(await agent.get('/login').expect(200)) };
      }),
    );
    const before = await argon2Runs('verify');
    const burst = await Promise.all(
      agents.map(({ agent, csrf }) =>
        agent
          .post('/login')
          .set('X-Forwarded-For', sprayer)
          .type('form')
          .send({ username: uniqueName('spray'), password: 'wrong guess', _csrf: csrf }),
      ),
    );
    expect(await argon2Runs('verify')).toBe(before + ADDRESS);
    expect(statuses(burst)).toEqual({ 401: ADDRESS, 429: 100 - ADDRESS });
    expect(await auditCount('login.throttled', sprayer)).toBe(100 - ADDRESS);
    const username = await newUser();
    expect((await formLogin(username, PASSWORD, sprayer)).status).toBe(429);
    expect((await formLogin(username, PASSWORD, freshIp())).status).toBe(303);
  });

  it('slows a username attacked from many addresses with growing delays instead of locking it', async () => {
    const username = await newUser();
    // The free failures, each from its own address so that no pair or address limit is reached.
    for (let i = 0; i < ACCOUNT; i++)
      expect((await token(username, 'wrong guess', freshIp())).status).toBe(401);

    const waits: number[] = [];
    for (let round = 0; round < 3; round++) {
      const before = await argon2Runs('verify');
      const burst = await Promise.all(
        Array.from({ length: 20 }, () => token(username, 'wrong guess', freshIp())),
      );
      // One attempt per delay gets through, however many addresses take part.
      expect(await argon2Runs('verify')).toBe(before + 1);
      expect(statuses(burst)).toEqual({ 401: 1, 429: 19 });
      const wait = Number(burst.find((r) => r.status === 429)!.headers['retry-after']);
      waits.push(wait);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000 + 50));
    }
    expect(waits).toEqual([1, 1, 2]);
    // Once the delay is over the owner's right password is verified and accepted: slowed, never locked.
    expect((await token(username, PASSWORD, freshIp())).status).toBe(201);
  });

  it('resets the pair when the address signs in successfully', async () => {
    const username = await newUser();
    const ip = freshIp();
    for (let i = 0; i < PAIR - 1; i++) expect((await token(username, 'wrong guess', ip)).status).toBe(401);
    expect((await formLogin(username, PASSWORD, ip)).status).toBe(303);
    // Without the reset these would exceed the pair limit.
    for (let i = 0; i < PAIR - 1; i++) expect((await token(username, 'wrong guess', ip)).status).toBe(401);
    expect((await token(username, PASSWORD, ip)).status).toBe(201);
  });

  it('shows the sign-in message once, not under every field', async () => {
    const username = await newUser();
    const ip = freshIp();
    const wrong = await formLogin(username, 'wrong guess', ip);
    expect(wrong.status).toBe(401);
    expect(occurrences(wrong.text, 'Invalid username or password.')).toBe(1);
    for (let i = 1; i < PAIR; i++) await formLogin(username, 'wrong guess', ip);
    const blocked = await formLogin(username, PASSWORD, ip);
    expect(blocked.status).toBe(429);
    expect(blocked.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(occurrences(blocked.text, 'Too many failed sign-in attempts')).toBe(1);
    expect(blocked.text).not.toContain('is-invalid');
  });
});

describe('registration protection', () => {
  it('refuses a taken name without running argon2', async () => {
    const username = await newUser();
    const before = await argon2Runs('hash');
    const taken = await register(username.toUpperCase(), freshIp());
    expect(taken.status).toBe(409);
    expect(occurrences(taken.text, 'That username is already taken')).toBe(1);
    expect(await argon2Runs('hash')).toBe(before);
  });

  it('throttles registration per client address, 409s included, and audits the refusals', async () => {
    const taken = await newUser();
    const ip = freshIp();
    const burst = await Promise.all(Array.from({ length: 10 }, () => register(taken, ip)));
    expect(statuses(burst)).toEqual({ 409: REGISTRATIONS, 429: 10 - REGISTRATIONS });
    const blocked = burst.find((r) => r.status === 429)!;
    expect(blocked.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(occurrences(blocked.text, 'Too many registrations from your address')).toBe(1);
    expect(await auditCount('register.throttled', ip)).toBe(10 - REGISTRATIONS);
    // Another address still registers.
    expect((await register(uniqueName(), freshIp())).status).toBe(303);
  });
});
