import { createHash } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrfFrom, formCookie, sessionCookie } from '../support/http.js';
import { GATEWAY_ENTRY } from '../support/paths.js';
import { freePort } from '../support/ports.js';
import { startProcess } from '../support/processes.js';
import { type CapturedMail, type SmtpCapture, startSmtpCapture } from '../support/smtp-server.js';
import { changePasswordOnPage, createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Password reset by e-mail (docs/security.md item 11b) against a real SMTP server on loopback (the
 * smtp-server package) that captures every message, the real PostgreSQL and Redis.
 */

const PUBLIC_URL = 'https://files.example.test';
const MAIL_FROM = 'TESS <tess@example.test>';
const NEW_PASSWORD = 'a fresh passphrase after the reset';
const LINK = /^https:\/\/files\.example\.test\/reset-password\?token=([A-Za-z0-9_-]{43})$/m;

let world: World;
let smtp: SmtpCapture;
let counter = 0;
let ipCounter = 0;

beforeAll(async () => {
  smtp = await startSmtpCapture();
  world = await createWorld({
    env: {
      SMTP_URL: smtp.url,
      PUBLIC_URL,
      MAIL_FROM,
      PASSWORD_RESET_MAX_PER_ADDRESS: '20',
      PASSWORD_RESET_MAX_PER_IP: '1000',
    },
  });
});

afterAll(async () => {
  await world?.close();
  await smtp?.close();
});

async function newUser(): Promise<TestUser> {
  counter += 1;
  return createUser(world.server, `reset${counter}_${world.id}`);
}

const emailOf = (user: TestUser) => `${user.username}@example.test`;

function freshIp(): string {
  ipCounter += 1;
  return `10.88.${Math.floor(ipCounter / 250)}.${ipCounter % 250}`;
}

/** Asks for a reset link through the form, as a browser would, from client address `ip`. */
async function requestReset(email: string, ip = freshIp(), server: string | World['server'] = world.server) {
  const page = await request(server).get('/forgot-password').expect(200);
  return request(server)
    .post('/forgot-password')
    .set('Cookie', formCookie(page)!)
    .set('X-Forwarded-For', ip)
    .type('form')
    .send({ email, _csrf: csrfFrom(page) });
}

function tokenIn(mail: CapturedMail): string {
  const token = LINK.exec(mail.text)?.[1];
  if (!token) throw new Error(`No reset link in the message:\n${mail.text}`);
  return token;
}

/** Requests a link for the user and returns its token, read from the captured message. */
async function mailedToken(user: TestUser): Promise<string> {
  const before = smtp.messages.length;
  expect((await requestReset(emailOf(user))).status).toBe(200);
  const mail = await smtp.waitFor(emailOf(user));
  const latest =
    smtp.messages
      .slice(before)
      .filter((m) => m.to.includes(emailOf(user)))
      .at(-1) ?? mail;
  return tokenIn(latest);
}

/** Opens the link and submits the new password on its page. */
async function completeReset(token: string, newPassword = NEW_PASSWORD, confirmPassword = newPassword) {
  const page = await request(world.server).get(`/reset-password?token=${token}`);
  if (page.status !== 200) return page;
  return request(world.server)
    .post('/reset-password')
    .set('Cookie', formCookie(page)!)
    .type('form')
    .send({ token, newPassword, confirmPassword, _csrf: csrfFrom(page) });
}

async function login(username: string, password: string): Promise<number> {
  const page = await request(world.server).get('/login');
  const res = await request(world.server)
    .post('/login')
    .set('Cookie', formCookie(page)!)
    .type('form')
    .send({ username, password, _csrf: csrfFrom(page) });
  return res.status;
}

async function audited(action: string, userId: string | null = null, ip?: string) {
  const rows: Array<{ details: Record<string, unknown> }> = await world.dataSource.query(
    `SELECT details FROM audit_events
      WHERE action = $1 AND ($2::uuid IS NULL OR user_id = $2) AND ($3::text IS NULL OR ip = $3)
      ORDER BY created_at`,
    [action, userId, ip ?? null],
  );
  return rows.map((r) => r.details);
}

const userId = async (user: TestUser) => (await world.users.findByUsername(user.username))!.id;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** The page a request answered with, without what differs per visitor (the CSRF token). */
const comparable = (text: string) => text.replace(/(value|content)="[0-9a-f]{64}"/g, '$1=""');

describe('password reset by e-mail', () => {
  it('offers "Forgot password?" and mails a plain-text link built from PUBLIC_URL, never from the Host header', async () => {
    const login = await request(world.server).get('/login').expect(200);
    expect(login.text).toContain('<a href="/forgot-password">Forgot password?</a>');
    const user = await newUser();
    const page = await request(world.server).get('/forgot-password').expect(200);
    const res = await request(world.server)
      .post('/forgot-password')
      .set('Host', 'attacker.example')
      .set('X-Forwarded-Host', 'attacker.example')
      .set('Cookie', formCookie(page)!)
      .type('form')
      .send({ email: emailOf(user).toUpperCase(), _csrf: csrfFrom(page) });
    expect(res.status).toBe(200);
    expect(res.text).toContain('If an account uses that address, we have sent it a link');
    const mail = await smtp.waitFor(emailOf(user));
    expect(mail.from).toBe('tess@example.test');
    expect(mail.raw).toMatch(/^From: TESS <tess@example\.test>\r?$/m);
    expect(mail.subject).toBe('Reset your TESS password');
    expect(mail.contentType).toBe('text/plain');
    expect(mail.text).toContain(`Hello ${user.username},`);
    expect(mail.text).toContain('open this link within 30 minutes');
    expect(mail.raw).not.toContain('attacker.example');
    expect(tokenIn(mail)).toHaveLength(43);
  });

  it('sets the new password once through the link, ending every session; the old password and the link stop working', async () => {
    const user = await newUser();
    const id = await userId(user);
    const token = await mailedToken(user);
    const form = await request(world.server).get(`/reset-password?token=${token}`).expect(200);
    expect(form.headers['cache-control']).toBe('no-store');
    expect(form.headers['referrer-policy']).toBe('no-referrer');
    // Opening the link (as a mail scanner may) does not use it, and stores no session.
    expect(sessionCookie(form)).toBeUndefined();

    const done = await completeReset(token);
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe('/login?reset=done');
    const notice = await request(world.server).get('/login?reset=done').expect(200);
    expect(notice.text).toContain('Your password was changed. Sign in with the new one.');

    await user.agent.get('/home').expect(303);
    await request(world.server).get('/api/v1/usage').set(user.auth).expect(200);
    expect(await login(user.username, TEST_PASSWORD)).toBe(401);
    expect(await login(user.username, NEW_PASSWORD)).toBe(303);

    const again = await completeReset(token, 'yet another passphrase here');
    expect(again.status).toBe(400);
    expect(again.text).toContain('This password reset link is not valid (it may have been used already).');
    expect(await login(user.username, NEW_PASSWORD)).toBe(303);

    expect(await audited('password.reset_requested', id)).toEqual([
      { matched: true, resetId: expect.any(String) },
    ]);
    expect(await audited('password.reset_completed', id)).toEqual([{ endedSessions: 1 }]);
    expect(await audited('password.reset_failed', id)).toEqual([{ reason: 'used' }]);
  });

  it('stores only the SHA-256 of the 256-bit token, valid for 30 minutes; an expired link is refused', async () => {
    const user = await newUser();
    const id = await userId(user);
    const token = await mailedToken(user);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    const rows: Array<Record<string, unknown>> = await world.dataSource.query(
      `SELECT *, extract(epoch FROM expires_at - created_at)::int AS lifetime
         FROM password_reset_tokens WHERE user_id = $1`,
      [id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(rows[0]!.lifetime).toBe(30 * 60);
    expect(JSON.stringify(rows)).not.toContain(token);

    await world.dataSource.query(
      `UPDATE password_reset_tokens
          SET created_at = now() - interval '31 minutes', expires_at = now() - interval '1 minute'
        WHERE user_id = $1`,
      [id],
    );
    const expired = await request(world.server).get(`/reset-password?token=${token}`);
    expect(expired.status).toBe(400);
    expect(expired.text).toContain('This password reset link has expired. Ask for a new one.');
    const page = await request(world.server).get('/forgot-password');
    const posted = await request(world.server)
      .post('/reset-password')
      .set('Cookie', formCookie(page)!)
      .type('form')
      .send({ token, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD, _csrf: csrfFrom(page) });
    expect(posted.status).toBe(400);
    expect(await login(user.username, TEST_PASSWORD)).toBe(303);
    expect(await audited('password.reset_failed', id)).toEqual([
      { reason: 'expired' },
      { reason: 'expired' },
    ]);
    // A made-up token is refused the same way, and audited without a user.
    const unknown = await request(world.server).get(`/reset-password?token=${'A'.repeat(43)}`);
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('This password reset link is not valid');
  });

  it('keeps the link through a refused new password, and a password change invalidates every outstanding link', async () => {
    const user = await newUser();
    const first = await mailedToken(user);
    const weak = await completeReset(first, 'password123');
    expect(weak.status).toBe(400);
    expect(weak.text).toContain('That password is one of the most common ones; choose another.');
    const mistyped = await completeReset(first, NEW_PASSWORD, `${NEW_PASSWORD}?`);
    expect(mistyped.text).toContain('The two new passwords are not the same.');
    await request(world.server).get(`/reset-password?token=${first}`).expect(200);

    const second = await mailedToken(user);
    const changed = await changePasswordOnPage(user, {
      currentPassword: TEST_PASSWORD,
      newPassword: NEW_PASSWORD,
      confirmPassword: NEW_PASSWORD,
    });
    expect(changed.status).toBe(303);
    for (const token of [first, second]) {
      const res = await completeReset(token, 'the attacker would like this one');
      expect(res.status).toBe(400);
    }
    expect(await login(user.username, NEW_PASSWORD)).toBe(303);
  });

  it('answers the same page in comparable time whether or not the address has an account (a mail server taking 400 ms)', async () => {
    const users = await Promise.all([newUser(), newUser(), newUser(), newUser(), newUser(), newUser()]);
    smtp.delayMs = 400;
    const known: number[] = [];
    const unknown: number[] = [];
    const pages = new Set<string>();
    try {
      for (const [i, user] of users.entries()) {
        for (const [email, times] of [
          [emailOf(user), known],
          [`nobody${i}_${world.id}@example.test`, unknown],
        ] as const) {
          const page = await request(world.server).get('/forgot-password');
          const started = performance.now();
          const res = await request(world.server)
            .post('/forgot-password')
            .set('Cookie', formCookie(page)!)
            .set('X-Forwarded-For', freshIp())
            .type('form')
            .send({ email, _csrf: csrfFrom(page) });
          times.push(performance.now() - started);
          expect(res.status).toBe(200);
          pages.add(comparable(res.text));
        }
      }
      await Promise.all(users.map((u) => smtp.waitFor(emailOf(u))));
    } finally {
      smtp.delayMs = 0;
    }
    expect(pages.size).toBe(1);
    const [k, u] = [median(known), median(unknown)];
    console.info(`reset request medians: known address ${k.toFixed(1)} ms, unknown ${u.toFixed(1)} ms`);
    // Sending the message inside the request would add the server's 400 ms to every known address.
    expect(k).toBeLessThan(200);
    expect(Math.abs(k - u)).toBeLessThan(100);
    expect(await audited('password.reset_requested')).toEqual(expect.arrayContaining([{ matched: false }]));
  });

  it('throttles per e-mail address and per client address, registered or not, and audits the refusals', async () => {
    const strict = await world.startGateway({
      ...world.config,
      passwordReset: { maxPerAddress: 2, maxPerIp: 4, windowMs: 3_600_000 },
    });
    const user = await newUser();
    for (const email of [emailOf(user), `ghost_${world.id}@example.test`]) {
      expect((await requestReset(email, freshIp(), strict.url)).status).toBe(200);
      expect((await requestReset(email.toUpperCase(), freshIp(), strict.url)).status).toBe(200);
      const refused = await requestReset(email, freshIp(), strict.url);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect(refused.text).toContain('Too many password reset requests for this address. Try again in');
    }
    const ip = freshIp();
    for (let i = 0; i < 4; i++)
      expect((await requestReset(`spray${i}_${world.id}@example.test`, ip, strict.url)).status).toBe(200);
    const sprayed = await requestReset(`spray9_${world.id}@example.test`, ip, strict.url);
    expect(sprayed.status).toBe(429);
    expect(sprayed.text).toContain('Too many password reset requests from your address.');
    expect(await audited('password.reset_throttled', null, ip)).toEqual([{ limit: 'reset-address' }]);
    expect((await audited('password.reset_throttled')).filter((d) => d.limit === 'reset-email')).toHaveLength(
      2,
    );
  });

  it('validates the address and needs the form token', async () => {
    const bad = await requestReset('not an address');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Enter a valid email address.');
    await request(world.server)
      .post('/forgot-password')
      .type('form')
      .send({ email: 'someone@example.test' })
      .expect(403);
  });

  it('never writes the token to the log, even when the mail server refuses the message', async () => {
    const port = await freePort();
    const gateway = startProcess('gateway-mail-log', GATEWAY_ENTRY, {
      ...world.env,
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
      PORT: String(port),
    });
    await gateway.waitForOutput(/gateway listening on/, 30_000);
    const base = `http://127.0.0.1:${port}`;
    try {
      const user = await newUser();
      smtp.reject = 'mailbox unavailable';
      const before = smtp.messages.length;
      expect((await requestReset(emailOf(user), freshIp(), base)).status).toBe(200);
      const refused = await smtp.waitFor(emailOf(user));
      expect(smtp.messages.length).toBe(before + 1);
      await gateway.waitForOutput(
        /Could not send password reset [0-9a-f-]{36} to user [0-9a-f-]{36}/,
        10_000,
      );
      smtp.reject = null;
      const token = tokenIn(refused);
      // The link works: the token reached the gateway in the URL and in the form, and the log has neither.
      const page = await request(base).get(`/reset-password?token=${token}`).expect(200);
      await request(base)
        .post('/reset-password')
        .set('Cookie', formCookie(page)!)
        .type('form')
        .send({ token, newPassword: NEW_PASSWORD, confirmPassword: NEW_PASSWORD, _csrf: csrfFrom(page) })
        .expect(303);
      await gateway.waitForOutput(/reset-password\?token=\[redacted\]/, 5_000);
      expect(gateway.output()).not.toContain(token);
      expect(gateway.output()).not.toContain(createHash('sha256').update(token).digest('hex'));
    } finally {
      smtp.reject = null;
      await gateway.stop(5_000);
    }
  });
});
