import { generate } from 'otplib';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newWatchedPage } from '../support/browser.js';
import { createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Two-factor sign-in in a real browser (Debian's chromium driven by playwright-core, the production
 * CSP): set-up on the Security page with the QR code shown and the key read off the page, the code
 * computed here by otplib, the recovery codes shown once, then signing out and in with a code.
 */

let world: World;
let browser: Browser;
let user: TestUser;
const problems: string[] = [];

// The wrong-code page answers 401 on purpose.
const newPage = () => newWatchedPage(browser, problems, /status of 40[01]\b/);

const codeFor = (secret: string, steps = 0) =>
  generate({ secret, epoch: Math.floor(Date.now() / 1000) + steps * 30 });

beforeAll(async () => {
  browser = await launchChromium();
  world = await createWorld({ ownOrigins: true, ownPublicUrl: true });
  user = await createUser(world.server, `browser_mfa_${world.id}`);
});

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

describe('two-factor sign-in in a browser', { timeout: 120_000 }, () => {
  it('sets up an authenticator app, signs out, and signs in again with a code', async () => {
    const page = await newPage();
    await page.goto(`${world.base}/login`);
    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await Promise.all([
      page.waitForURL(`${world.base}/home`),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);

    await page.goto(`${world.base}/account`);
    await Promise.all([
      page.waitForURL(`${world.base}/account/security`),
      page.getByTestId('security-link').click(),
    ]);
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    const qr = page.getByTestId('totp-qr');
    await qr.waitFor();
    // The QR code image loaded under the CSP (a data: URL the server rendered) and has its size.
    expect(
      await qr.evaluate((img) => {
        const image = img as unknown as { complete: boolean; naturalWidth: number };
        return image.complete && image.naturalWidth > 0;
      }),
    ).toBe(true);
    const secret = (await page.getByTestId('totp-secret').textContent())!.trim();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    await page.getByLabel('Code from the app').fill(await codeFor(secret));
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByTestId('recovery-codes').waitFor();
    expect(await page.getByTestId('recovery-code').count()).toBe(10);
    const download = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download as a text file' }).click(),
    ]).then(([d]) => d);
    expect(download.suggestedFilename()).toBe('tess-recovery-codes.txt');
    expect(await page.getByTestId('totp-status').textContent()).toContain('On');

    await Promise.all([
      page.waitForURL(`${world.base}/login`),
      page.getByRole('button', { name: 'Log out' }).click(),
    ]);

    await page.getByLabel('Username').fill(user.username);
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await Promise.all([
      page.waitForURL(`${world.base}/login/second-factor`),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    // Half signed in: the home page sends the browser back to sign in.
    await page.goto(`${world.base}/home`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.goto(`${world.base}/login/second-factor`);
    await page.getByLabel('Code').fill('000000');
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect(page.locator('#code-error').textContent()).resolves.toContain('That code is not valid');
    // The activation spent this step: the next one's code signs in.
    await page.getByLabel('Code').fill(await codeFor(secret, 1));
    await Promise.all([
      page.waitForURL(`${world.base}/home`),
      page.getByRole('button', { name: 'Verify' }).click(),
    ]);
    expect(problems).toEqual([]);
  });
});
