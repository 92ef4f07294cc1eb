import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSP_PROBE, collectProblems, launchChromium, signedInPage } from '../support/browser.js';
import { sha256 } from '../support/bytes.js';
import { upload, waitFor, waitForStored } from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * The versions panel in a real browser (Debian's chromium through playwright-core, the production CSP):
 * dropping a file named like a stored one offers "New version" or "Keep both"; the new version shows in
 * the row (v2) and in the panel, which also uploads a version, downloads one and restores one. The
 * downloaded bytes are compared with what was uploaded.
 */

let world: World;
let browser: Browser;
let owner: TestUser;
let fileId: string;
const v1 = randomBytes(40_000);
const v2 = Buffer.from('the second version of the plan\n');
const v3 = randomBytes(12_345);
const problems: string[] = [];

function watch(page: Page): void {
  collectProblems(page, problems);
}

beforeAll(async () => {
  world = await createWorld({ ownOrigins: true, workers: 'in-process' });
  owner = await createUser(world.server, `versioner_${world.id}`);
  const [file] = await upload(world, owner, [{ filename: 'plan.txt', body: v1 }]);
  fileId = file!.id;
  await waitForStored(world, fileId);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await world?.close();
});

function ownerPage() {
  return signedInPage(browser, world.base, owner, {
    context: { acceptDownloads: true },
    initScript: CSP_PROBE,
    watch,
  });
}

const row = (page: Page) => page.locator(`tr[data-file-id="${fileId}"]`);

describe('the versions panel', { timeout: 120_000 }, () => {
  it('a same-name upload offers a new version; the panel uploads another, downloads and restores', async () => {
    const { context, page } = await ownerPage();
    await expect(row(page).locator('[data-field="version"]').textContent()).resolves.toBe('v1');

    // The picker with a file of the same name: the dialog asks; "New version".
    await page.locator('#file-input').setInputFiles({ name: 'plan.txt', mimeType: 'text/plain', buffer: v2 });
    const ask = page.locator('#same-name-modal');
    await ask.and(page.locator('.show')).waitFor();
    expect(await ask.locator('[data-field="filename"]').textContent()).toBe('plan.txt');
    await ask.getByRole('button', { name: 'New version' }).click();
    await waitFor(
      'v2 in the row',
      async () => (await row(page).locator('[data-field="version"]').textContent()) === 'v2',
    );
    expect(await page.locator('#files-body tr').count()).toBe(1);
    expect((await world.files.findById(fileId))!.sha256).toBe(sha256(v2));

    // The panel lists both; a third version from its own picker.
    await page.getByRole('button', { name: 'Versions of plan.txt' }).click();
    const panel = page.locator('#versions-modal');
    await panel.and(page.locator('.show')).waitFor();
    await panel.locator('tr[data-version="1"]').waitFor();
    expect(await panel.locator('tr[data-version]').count()).toBe(2);
    expect(await panel.locator('tr[data-version="2"] [data-field="current"]').isVisible()).toBe(true);
    await panel
      .locator('#version-input')
      .setInputFiles({ name: 'plan-new.txt', mimeType: 'text/plain', buffer: v3 });
    await panel.locator('tr[data-version="3"]').waitFor({ timeout: 30_000 });
    expect(await panel.locator('tr[data-version="3"] [data-field="current"]').isVisible()).toBe(true);
    await waitFor(
      'v3 in the row',
      async () => (await row(page).locator('[data-field="version"]').textContent()) === 'v3',
    );

    // Download v1 from the panel: the bytes that were uploaded.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      panel.getByRole('link', { name: 'Download version 1' }).click(),
    ]);
    const path = await download.path();
    const { readFile } = await import('node:fs/promises');
    expect(sha256(await readFile(path!))).toBe(sha256(v1));

    // Restore v1: v4 is current and the row says so.
    await panel.getByRole('button', { name: 'Restore version 1' }).click();
    await panel.locator('tr[data-version="4"]').waitFor();
    expect(await panel.locator('tr[data-version="4"] [data-field="current"]').isVisible()).toBe(true);
    expect(await panel.locator('tr[data-version="4"] [data-field="restored"]').textContent()).toBe(
      'restored from v1',
    );
    await waitFor(
      'v4 in the row',
      async () => (await row(page).locator('[data-field="version"]').textContent()) === 'v4',
    );
    expect((await world.files.findById(fileId))!.sha256).toBe(sha256(v1));

    // Delete v2 from the panel.
    await panel.getByRole('button', { name: 'Delete version 2' }).click();
    await waitFor('v2 gone', async () => (await panel.locator('tr[data-version="2"]').count()) === 0);
    expect((await world.files.findById(fileId))!.versionCount).toBe(3);

    // "Keep both" makes a second file of the same name.
    await panel.getByRole('button', { name: 'Close' }).click();
    await panel.waitFor({ state: 'hidden' });
    await page.locator('#file-input').setInputFiles({ name: 'plan.txt', mimeType: 'text/plain', buffer: v2 });
    await ask.and(page.locator('.show')).waitFor();
    await ask.getByRole('button', { name: 'Keep both' }).click();
    await waitFor('two plan.txt rows', async () => (await page.locator('#files-body tr').count()) === 2);

    expect(await page.evaluate('window.__cspViolations')).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  });
});
