import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { type SmtpCapture, startSmtpCapture } from '../support/smtp-server.js';
import { createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Password reset and change in a real browser (Debian's chromium driven by playwright-core) against the
 * real gateway and a loopback SMTP server (smtp-server) that captures the mail: "Forgot password?" on
 * the sign-in page, the request form, the link from the message, the new password, and the other
 * browser's session ending; then a change on the account page. The CSP is the production one.
 */

const RESET_PASSWORD = 'a passphrase chosen after the reset';
const CHANGED_PASSWORD = 'and then changed once more on the account page';

let world: World;
let smtp: SmtpCapture;
let browser: Browser;
let user: TestUser;
const problems: string[] = [];
/** Chromium logs every 400 page as a console error; the flow expects exactly two (see the last test). */
let pages400 = 0;

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (/^Failed to load resource: the server responded with a status of 400\b/.test(message.text()))
      pages400++;
    else if (message.type() === 'error' || /Content.Security.Policy/i.test(message.text()))
      problems.push(`console: ${message.text()}`);
  });
  return page;
}

async function signIn(page: Page, password: string): Promise<void> {
  await page.goto(`${world.base}/login`);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(password);
  await Promise.all([
    page.waitForURL(`${world.base}/home`),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

/** Whether the page's session still holds: a reload of /home stays there, or lands on /login. */
async function stillSignedIn(page: Page): Promise<boolean> {
  await page.goto(`${world.base}/home`);
  return new URL(page.url()).pathname === '/home';
}

beforeAll(async () => {
  browser = await launchChromium();
  smtp = await startSmtpCapture();
  world = await createWorld({ ownOrigins: true, ownPublicUrl: true, env: { SMTP_URL: smtp.url } });
  user = await createUser(world.server, `browser_reset_${world.id}`);
});

afterAll(async () => {
  await browser?.close();
  await world?.close();
  await smtp?.close();
});

describe('password reset in a browser', { timeout: 120_000 }, () => {
  it('asks for a link, opens it from the mail, sets a new password; every session ends and the link dies', async () => {
    const elsewhere = await newPage();
    await signIn(elsewhere, TEST_PASSWORD);

    const page = await newPage();
    await page.goto(`${world.base}/login`);
    await Promise.all([
      page.waitForURL(`${world.base}/forgot-password`),
      page.getByRole('link', { name: 'Forgot password?' }).click(),
    ]);
    await page.getByLabel('Email').fill(`${user.username}@example.test`);
    await page.getByRole('button', { name: 'Send the link' }).click();
    await expect
      .poll(() => page.getByTestId('reset-requested').textContent())
      .toContain('If an account uses that address, we have sent it a link to choose a new password.');

    const mail = await smtp.waitFor(`${user.username}@example.test`);
    const link = mail.text.split('\n').find((line) => line.startsWith(`${world.base}/reset-password?token=`));
    expect(link, mail.text).toBeDefined();

    await page.goto(link!);
    await page.getByLabel('New password', { exact: true }).fill(RESET_PASSWORD);
    await page.getByLabel('New password again').fill(RESET_PASSWORD);
    await Promise.all([
      page.waitForURL(`${world.base}/login?reset=done`),
      page.getByRole('button', { name: 'Set the new password' }).click(),
    ]);
    expect(await page.getByRole('alert').textContent()).toContain(
      'Your password was changed. Sign in with the new one.',
    );

    expect(await stillSignedIn(elsewhere)).toBe(false);
    await signIn(page, RESET_PASSWORD);

    await page.goto(link!);
    expect(await page.getByTestId('reset-error').textContent()).toContain(
      'This password reset link is not valid (it may have been used already).',
    );
  });

  it('changes the password on the account page, signing out the other browser', async () => {
    const elsewhere = await newPage();
    await signIn(elsewhere, RESET_PASSWORD);
    const page = await newPage();
    await signIn(page, RESET_PASSWORD);
    await Promise.all([
      page.waitForURL(`${world.base}/account`),
      page.getByRole('link', { name: 'Account' }).click(),
    ]);
    await page.getByLabel('Current password').fill('not the password');
    await page.getByLabel('New password', { exact: true }).fill(CHANGED_PASSWORD);
    await page.getByLabel('New password again').fill(CHANGED_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    expect(await page.locator('#currentPassword-error').textContent()).toBe(
      'Your current password is not correct.',
    );

    await page.getByLabel('Current password').fill(RESET_PASSWORD);
    await page.getByLabel('New password', { exact: true }).fill(CHANGED_PASSWORD);
    await page.getByLabel('New password again').fill(CHANGED_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await expect
      .poll(() => page.getByRole('alert').textContent())
      .toContain(
        // The first test's browser is still signed in too.
        'Your password was changed. Your 2 other sessions were signed out; your API tokens keep working.',
      );

    expect(await stillSignedIn(page)).toBe(true);
    expect(await stillSignedIn(elsewhere)).toBe(false);
    await signIn(elsewhere, CHANGED_PASSWORD);
  });

  it('reported no CSP violation, page error or console error', () => {
    expect(problems).toEqual([]);
    // The used link and the wrong current password, both answered 400 on purpose.
    expect(pages400).toBe(2);
  });
});
