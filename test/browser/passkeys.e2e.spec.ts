import type { Browser, CDPSession, Page } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newWatchedPage } from '../support/browser.js';
import { csrfFrom } from '../support/http.js';
import { createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Passkeys in a real browser (docs/security.md item 30a): Debian's chromium with a software
 * authenticator (the DevTools protocol's virtual authenticator, through playwright's CDP session),
 * the production CSP and the locally served @simplewebauthn/browser. A passkey is registered on the
 * Security page (the first factor, so recovery codes are shown), then signing out and in with it as
 * the second step. PUBLIC_URL is http://localhost:<port>: a relying-party id cannot be an IP address.
 */

let world: World;
let browser: Browser;
let user: TestUser;
const problems: string[] = [];

async function newPage(): Promise<Page> {
  // The wrong password to remove a passkey answers 400 on purpose.
  const page = await newWatchedPage(browser, problems, /status of 400\b/);
  page.setDefaultTimeout(15_000);
  return page;
}

/** A CTAP2 platform authenticator that says yes by itself (user present and verified). */
async function addAuthenticator(page: Page): Promise<{ cdp: CDPSession; authenticatorId: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

async function signIn(page: Page, next: string): Promise<void> {
  await page.goto(`${world.base}/login`);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(TEST_PASSWORD);
  await Promise.all([
    page.waitForURL(`${world.base}${next}`),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

const passkeyRows = () =>
  world.dataSource.query(
    `SELECT p.name, p.counter, p.transports, p.last_used_at FROM mfa_passkeys p
       JOIN users u ON u.id = p.user_id WHERE u.username = $1`,
    [user.username],
  ) as Promise<Array<{ name: string; counter: string; transports: string; last_used_at: Date | null }>>;

beforeAll(async () => {
  browser = await launchChromium();
  world = await createWorld({ ownOrigins: true, ownPublicUrl: true, ownHost: 'localhost' });
  user = await createUser(world.server, `browser_pk_${world.id}`);
});

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

describe('passkeys in a browser', { timeout: 120_000 }, () => {
  it('registers a passkey on the Security page, signs out, and signs in with it as the second step', async () => {
    const page = await newPage();
    const { cdp, authenticatorId } = await addAuthenticator(page);
    await signIn(page, '/home');

    await page.goto(`${world.base}/account/security`);
    await page.getByLabel('Name for a new passkey').fill('Test laptop');
    await page.getByTestId('passkey-add').click();
    // The first factor of the account: its recovery codes, shown once, by the page's script.
    await page.getByTestId('recovery-codes').waitFor();
    expect(await page.getByTestId('recovery-code').count()).toBe(10);
    await Promise.all([
      page.waitForURL(`${world.base}/account/security`),
      page.getByRole('link', { name: 'Continue' }).click(),
    ]);
    await expect(page.getByTestId('passkey-name').textContent()).resolves.toBe('Test laptop');
    // Times in the browser's zone (security.js), the server's UTC ISO time kept as the title.
    const added = page.locator('[data-testid="passkey-row"] time').first();
    await expect(added.getAttribute('title')).resolves.toMatch(/^\d{4}-\d\d-\d\dT/);
    await expect(added.textContent()).resolves.not.toMatch(/T\d\d:/);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    const [stored] = await passkeyRows();
    expect(stored).toMatchObject({ name: 'Test laptop', last_used_at: null });
    expect(stored!.transports).toBe('internal');

    // A command line cannot use the passkey: the token endpoint says what to do instead.
    const cli = await request(world.server)
      .post('/api/v1/tokens')
      .send({ username: user.username, password: TEST_PASSWORD });
    expect(cli.status).toBe(401);
    expect(cli.body.message).toContain('recovery code');

    await Promise.all([
      page.waitForURL(`${world.base}/login`),
      page.getByRole('button', { name: 'Log out' }).click(),
    ]);
    await signIn(page, '/login/second-factor');
    await page.goto(`${world.base}/home`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await signIn(page, '/login/second-factor');
    let assertion: string | null = null;
    page.on('request', (req) => {
      if (new URL(req.url()).pathname === '/login/second-factor/passkey') assertion = req.postData();
    });
    await Promise.all([page.waitForURL(`${world.base}/home`), page.getByTestId('passkey-sign-in').click()]);

    // The assertion answered its own challenge once: replayed in another pending session (with a
    // fresh challenge of its own) it is refused, and that challenge is spent by the failed try.
    expect(assertion).not.toBeNull();
    const replay = request.agent(world.server);
    const login = await replay.get('/login');
    await replay
      .post('/login')
      .type('form')
      .send({ username: user.username, password: TEST_PASSWORD, _csrf: csrfFrom(login) })
      .expect(303)
      .expect('Location', '/login/second-factor');
    const second = await replay.get('/login/second-factor').expect(200);
    expect(second.text).toContain('data-testid="passkey-sign-in"');
    const json = (path: string, body: string) =>
      replay
        .post(path)
        .set('X-CSRF-Token', csrfFrom(second))
        .set('Accept', 'application/json')
        .set('Content-Type', 'application/json')
        .send(body);
    const options = await json('/login/second-factor/passkey/options', '{}').expect(200);
    expect(options.body.rpId).toBe('localhost');
    expect(options.body.allowCredentials).toHaveLength(1);
    const replayed = await json('/login/second-factor/passkey', assertion!).expect(401);
    expect(replayed.body.message).toContain('passkey was not accepted');
    await json('/login/second-factor/passkey', assertion!).expect(401);
    await json('/login/second-factor/passkey', '{"response":{"id":"x"}}').expect(400);
    await replay.get('/home').expect(303);
    const reasons = await world.dataSource.query(
      `SELECT a.details->>'reason' AS reason FROM audit_events a JOIN users u ON u.id = a.user_id
        WHERE u.username = $1 AND a.action = 'mfa.failed' ORDER BY a.created_at, a.id`,
      [user.username],
    );
    expect(reasons.map((r: { reason: string }) => r.reason)).toEqual([
      expect.stringMatching(/challenge/i),
      'no challenge',
    ]);

    const [used] = await passkeyRows();
    expect(used!.last_used_at).not.toBeNull();
    const { credentials: after } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(Number(used!.counter)).toBe(after[0]!.signCount);
    const events = await world.dataSource.query(
      `SELECT a.action, a.details FROM audit_events a JOIN users u ON u.id = a.user_id
        WHERE u.username = $1 AND a.action IN ('mfa.passkey_added', 'mfa.succeeded', 'login.succeeded')
        ORDER BY a.created_at, a.id`,
      [user.username],
    );
    expect(events.map((e: { action: string }) => e.action)).toEqual([
      'login.succeeded',
      'mfa.passkey_added',
      'mfa.succeeded',
      'login.succeeded',
    ]);
    expect(events.at(-1).details).toMatchObject({ secondFactor: 'passkey' });

    // Rename, then remove with the password (a wrong one is refused).
    await page.goto(`${world.base}/account/security`);
    await page.getByText('Rename or remove').click();
    await page.getByLabel('New name').fill('Work laptop');
    await Promise.all([
      page.waitForURL(`${world.base}/account/security`),
      page.getByRole('button', { name: 'Rename', exact: true }).click(),
    ]);
    await expect(page.getByTestId('passkey-name').textContent()).resolves.toBe('Work laptop');
    await page.getByText('Rename or remove').click();
    await page.locator('input[name="passkeyPassword"]').fill('not my password at all');
    await page.getByRole('button', { name: 'Remove', exact: true }).click();
    await expect(page.getByTestId('passkey-remove-error').textContent()).resolves.toContain('not correct');
    expect(await passkeyRows()).toHaveLength(1);
    await page.getByText('Rename or remove').click();
    await page.locator('input[name="passkeyPassword"]').fill(TEST_PASSWORD);
    await Promise.all([
      page.waitForURL(`${world.base}/account/security`),
      page.getByRole('button', { name: 'Remove', exact: true }).click(),
    ]);
    expect(await passkeyRows()).toHaveLength(0);
    await expect(page.getByTestId('no-passkeys').isVisible()).resolves.toBe(true);
    // The last factor gone, its recovery codes went with it: the password alone signs in again.
    expect(
      await world.dataSource.query(
        'SELECT 1 FROM mfa_recovery_codes r JOIN users u ON u.id = r.user_id WHERE u.username = $1',
        [user.username],
      ),
    ).toHaveLength(0);
    expect(problems).toEqual([]);
  });
});

describe('a passkey as the first factor with MFA_REQUIRED', { timeout: 120_000 }, () => {
  it('enrols a new account with a passkey at its first sign-in, then signs in with it', async () => {
    const required = await createWorld({
      ownOrigins: true,
      ownPublicUrl: true,
      ownHost: 'localhost',
      env: { MFA_REQUIRED: 'true' },
    });
    const page = await newPage();
    try {
      await addAuthenticator(page);
      const username = `browser_req_${required.id}`;
      await page.goto(`${required.base}/register`);
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Email').fill(`${username}@example.test`);
      await page.getByLabel('Password').fill(TEST_PASSWORD);
      await Promise.all([
        page.waitForURL(`${required.base}/login/enrol`),
        page.getByRole('button', { name: 'Create account' }).click(),
      ]);
      await page.getByLabel('Name for this passkey').fill('Phone');
      await page.getByRole('button', { name: 'Add a passkey' }).click();
      await page.getByTestId('recovery-codes').waitFor();
      expect(await page.getByTestId('recovery-code').count()).toBe(10);
      await Promise.all([
        page.waitForURL(`${required.base}/home`),
        page.getByRole('link', { name: 'Continue' }).click(),
      ]);
      await Promise.all([
        page.waitForURL(`${required.base}/login`),
        page.getByRole('button', { name: 'Log out' }).click(),
      ]);
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(TEST_PASSWORD);
      await Promise.all([
        page.waitForURL(`${required.base}/login/second-factor`),
        page.getByRole('button', { name: 'Sign in' }).click(),
      ]);
      await Promise.all([
        page.waitForURL(`${required.base}/home`),
        page.getByTestId('passkey-sign-in').click(),
      ]);
      expect(problems).toEqual([]);
    } finally {
      // Its live socket would keep the gateway from closing.
      await page.context().close();
      await required.close();
    }
  });
});
