import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSP_PROBE, collectProblems, launchChromium, signedInPage } from '../support/browser.js';
import { MiB, sha256 } from '../support/bytes.js';
import { upload, waitForStored } from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Share links in a real browser (Debian's chromium through playwright-core): the owner creates a link
 * from the dashboard's Share dialog, copies it, and a fresh browser context without any session opens
 * it, enters the password and downloads the file, whose SHA-256 is compared; revoking it from the
 * dialog turns the link into a 410 page. The production CSP applies throughout.
 */

const LINK_PASSWORD = 'a passphrase for the auditors';
/** Set TESS_BROWSER_SHOTS=<dir> to keep screenshots of the dialog and the link page for a look. */
const SHOTS = process.env.TESS_BROWSER_SHOTS;

let world: World;
let browser: Browser;
let owner: TestUser;
let data: Buffer;
const problems: string[] = [];

function watch(page: Page): void {
  collectProblems(page, problems);
}

async function cspViolations(page: Page): Promise<string[]> {
  return (await page.evaluate('window.__cspViolations || []')) as string[];
}

beforeAll(async () => {
  world = await createWorld({ ownOrigins: true, workers: 'in-process' });
  owner = await createUser(world.server, `sharer_${world.id}`);
  data = randomBytes(2 * MiB + 777);
  const [file] = await upload(world, owner, [{ filename: 'board minutes.pdf', body: data }]);
  await waitForStored(world, file!.id);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

/** A signed-in dashboard of the owner, in a context of its own. */
async function ownerPage(clipboard = false) {
  const signedIn = await signedInPage(browser, world.base, owner, { initScript: CSP_PROBE, watch });
  if (clipboard) {
    await signedIn.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: world.base });
  }
  return signedIn;
}

describe('share links in a browser', { timeout: 120_000 }, () => {
  let url: string;

  it('creates a link with a password and a download limit from the Share dialog, and copies it', async () => {
    const { context, page } = await ownerPage(true);

    await page.getByRole('button', { name: 'Share board minutes.pdf' }).click();
    const modal = page.locator('#share-modal');
    await modal.and(page.locator('.show')).waitFor();
    expect(await modal.locator('[data-field="filename"]').textContent()).toBe('board minutes.pdf');
    await modal.locator('[data-field="no-links"]').waitFor();
    await modal.getByLabel('Expires after').selectOption('1d');
    await modal.getByLabel('Max downloads').fill('2');
    await modal.getByLabel('Password (optional)').fill(LINK_PASSWORD);
    await modal.getByLabel('Note (only you see it)').fill('for the board');
    await modal.getByRole('button', { name: 'Create link' }).click();
    await modal.locator('[data-field="created"]').waitFor();
    url = await modal.locator('#share-url').inputValue();
    expect(url).toMatch(new RegExp(`^${world.base}/s/[A-Za-z0-9_-]{43}$`));
    await modal.getByRole('button', { name: 'Copy the link' }).click();
    await page.locator('#toasts .toast', { hasText: 'Link copied' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(url);
    const item = modal.locator('#share-list li[data-state="active"]');
    await item.waitFor();
    expect(await item.textContent()).toContain('0 downloads of 2');
    expect(await item.textContent()).toContain('for the board');
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'share-dialog.png') });
    expect(await cspViolations(page)).toEqual([]);
    await context.close();
  });

  it('opens the link in a fresh context without a session, asks the password and downloads the file', async () => {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
    });
    await context.addInitScript(CSP_PROBE);
    const page = await context.newPage();
    watch(page);
    const response = await page.goto(url);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['referrer-policy']).toBe('no-referrer');
    expect(await page.locator('h1').textContent()).toContain('board minutes.pdf');
    expect(await page.locator('[data-field="sha256"]').textContent()).toBe(sha256(data));
    expect(await page.getByTestId('share-download').count()).toBe(0);

    await page.getByLabel('Password').fill('not it at all');
    await page.getByRole('button', { name: 'Unlock' }).click();
    expect(await page.getByTestId('share-error').textContent()).toContain('That password is not right.');
    await page.getByLabel('Password').fill(LINK_PASSWORD);
    await Promise.all([page.waitForURL(url), page.getByRole('button', { name: 'Unlock' }).click()]);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'share-page.png') });
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('share-download').click(),
    ]);
    expect(download.suggestedFilename()).toBe('board minutes.pdf');
    const bytes = await readFile((await download.path())!);
    expect(bytes.length).toBe(data.length);
    expect(sha256(bytes)).toBe(sha256(data));
    expect(await cspViolations(page)).toEqual([]);
    // No session was ever made for the visitor.
    expect((await context.cookies()).some((c) => c.name === 'tess.sid')).toBe(false);
    await context.close();
  });

  it('shows the count to the owner and revokes the link from the dialog; the link then answers 410', async () => {
    const { context, page } = await ownerPage();
    await page.getByRole('button', { name: 'Share board minutes.pdf' }).click();
    const modal = page.locator('#share-modal');
    const item = modal.locator('#share-list li[data-state="active"]');
    await item.waitFor();
    expect(await item.textContent()).toContain('1 download of 2');
    await item.getByRole('button', { name: /Revoke/ }).click();
    await modal.locator('#share-list li[data-state="revoked"]').waitFor();
    expect(await modal.locator('#share-list li[data-state="active"]').count()).toBe(0);
    expect(await cspViolations(page)).toEqual([]);

    const visitor = await browser.newContext();
    const gone = await visitor.newPage();
    const response = await gone.goto(url);
    expect(response?.status()).toBe(410);
    expect(await gone.locator('h1').textContent()).toBe('This link was revoked');
    await visitor.close();
    await context.close();
    // The one answer the browser reports is the wrong password's 401 page, made on purpose above.
    expect(problems).toEqual([
      'console: Failed to load resource: the server responded with a status of 401 (Unauthorized)',
    ]);
  });
});
