import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { waitFor } from '../support/client.js';
import { createUser, TEST_PASSWORD, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Folders and bulk actions in a real browser (Debian's chromium through playwright-core), under the
 * production CSP: create a folder, open it, upload into it, rename a file, search, sort, select a range
 * with shift-click, download the selection as a ZIP and delete it in bulk.
 */

const CSP_PROBE = `
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
  });
`;

const run = promisify(execFile);
let world: World;
let browser: Browser;
let user: TestUser;
let page: Page;
let dir: string;
const problems: string[] = [];

beforeAll(async () => {
  world = await createWorld({ ownOrigins: true, workers: 'in-process' });
  user = await createUser(world.server, `folders_${world.id}`);
  browser = await launchChromium();
  dir = await mkdtemp(join(tmpdir(), 'tess-browser-zip-'));
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  await context.addInitScript(CSP_PROBE);
  page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(`${world.base}/login`);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(TEST_PASSWORD);
  await Promise.all([
    page.waitForURL(`${world.base}/home`),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await world?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const row = (name: string) =>
  page.locator('#files-body tr', { has: page.locator('[data-field="filename"]', { hasText: name }) });

describe('folders and bulk actions in the dashboard', { timeout: 120_000 }, () => {
  const bodies = new Map<string, Buffer>();

  it('creates a folder, opens it and uploads into it', async () => {
    await page.getByRole('button', { name: 'New folder' }).click();
    await page.locator('#name-input').fill('Quarterly reports');
    await page.locator('#name-submit').click();
    await page.getByRole('button', { name: 'Open the folder Quarterly reports' }).click();
    await expect.poll(() => page.locator('#breadcrumbs').textContent()).toContain('Quarterly reports');
    for (const name of ['q1.bin', 'q2.bin', 'q3.bin', 'notes.txt'])
      bodies.set(name, randomBytes(5000 + bodies.size));
    await page.setInputFiles(
      '#file-input',
      [...bodies].map(([name, buffer]) => ({ name, mimeType: 'application/octet-stream', buffer })),
    );
    for (const name of bodies.keys()) {
      await expect.poll(() => row(name).getAttribute('data-status'), { timeout: 30_000 }).toBe('stored');
    }
    const folders = await world.dataSource.query('SELECT id FROM folders WHERE name = $1', [
      'Quarterly reports',
    ]);
    const [{ n }] = await world.dataSource.query(
      'SELECT count(*)::int AS n FROM files WHERE folder_id = $1',
      [folders[0].id],
    );
    expect(n).toBe(4);
    // The root does not list them.
    await page.locator('#breadcrumbs a', { hasText: 'My files' }).click();
    await expect.poll(() => page.locator('#files-body tr').count()).toBe(0);
    await page.getByRole('button', { name: 'Open the folder Quarterly reports' }).click();
    await expect.poll(() => page.locator('#files-body tr').count()).toBe(4);
  });

  it('renames a file, refuses a taken name in the dialog, and searches and sorts', async () => {
    await row('notes.txt').getByRole('button', { name: 'Rename notes.txt' }).click();
    await page.locator('#name-input').fill('Q1.BIN');
    await page.locator('#name-submit').click();
    await expect
      .poll(() => page.locator('#name-modal [data-field="error"]').textContent())
      .toMatch(/already in that folder/);
    await page.locator('#name-input').fill('summary.txt');
    await page.locator('#name-submit').click();
    await expect.poll(() => row('summary.txt').count()).toBe(1);
    bodies.set('summary.txt', bodies.get('notes.txt')!);
    bodies.delete('notes.txt');

    await page.locator('#file-search').fill('q');
    await expect.poll(() => page.locator('#files-body tr').count()).toBe(3);
    await page.locator('#file-search').fill('');
    await expect.poll(() => page.locator('#files-body tr').count()).toBe(4);
    await page.locator('#files-table .sort-btn[data-sort="name"]').click();
    await expect
      .poll(() => page.locator('#files-body [data-field="filename"]').allTextContents())
      .toEqual(['q1.bin', 'q2.bin', 'q3.bin', 'summary.txt']);
  });

  it('selects a range with shift-click and downloads it as a ZIP of identical bytes', async () => {
    await row('q1.bin').locator('[data-action="select"]').click();
    await row('q3.bin')
      .locator('[data-action="select"]')
      .click({ modifiers: ['Shift'] });
    await expect.poll(() => page.locator('#bulk-bar [data-field="count"]').textContent()).toBe('3 selected');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('#bulk-download').click(),
    ]);
    const zip = join(dir, 'selection.zip');
    await download.saveAs(zip);
    const out = join(dir, 'out');
    await run('python3', ['-m', 'zipfile', '-e', zip, out]);
    for (const name of ['q1.bin', 'q2.bin', 'q3.bin']) {
      expect(Buffer.compare(await readFile(join(out, name)), bodies.get(name)!)).toBe(0);
    }
  });

  it('closes a confirmation whose action finished while the dialog was still fading in', async () => {
    // Bootstrap ignores hide() during the fade-in; a bulk delete that answers before it ends (a click as
    // soon as the button shows) left the dialog open over the finished action once (CI, 2026-12-08).
    // A string, not a function: vitest would rewrite a function's import() for Node before it reached
    // the page.
    const outcome = await page.evaluate(`(async () => {
      const { confirmAction } = await import('/static/js/dashboard/dialogs.js');
      const el = document.getElementById('confirm-modal');
      const event = (name) => new Promise((resolve) => el.addEventListener(name, resolve, { once: true }));
      let shownYet = false;
      const shown = event('shown.bs.modal').then(() => { shownYet = true; });
      const hidden = event('hidden.bs.modal');
      let ran = 0;
      confirmAction({ title: 'Fast action', text: 'Done at once.', label: 'Go', run: async () => { ran++; } });
      document.getElementById('confirm-ok').click();
      const clickedWhileOpening = !shownYet;
      await shown;
      const closed = await Promise.race([hidden.then(() => true), new Promise((r) => setTimeout(r, 3000, false))]);
      return { clickedWhileOpening, ran, closed, open: el.classList.contains('show') };
    })()`);
    expect(outcome).toEqual({ clickedWhileOpening: true, ran: 1, closed: true, open: false });
  });

  it('deletes the selection in bulk after a confirmation', async () => {
    await page.locator('#bulk-delete').click();
    await page.locator('#confirm-ok').click();
    await expect
      .poll(() => page.locator('#files-body [data-field="filename"]').allTextContents())
      .toEqual(['summary.txt']);
    await waitFor('the rows to be gone', async () => {
      const [{ n }] = await world.dataSource.query(
        "SELECT count(*)::int AS n FROM files WHERE filename LIKE 'q_.bin'",
      );
      return n === 0;
    });
    await page.locator('#confirm-modal').waitFor({ state: 'hidden' });
    // The header box selects every file shown, and clears them again.
    await page.locator('#select-all').check();
    await expect.poll(() => page.locator('#bulk-bar [data-field="count"]').textContent()).toBe('1 selected');
    await page.locator('#select-all').uncheck();
    await expect.poll(() => page.locator('#bulk-bar').isHidden()).toBe(true);
    // A folder moves too: a new one at the top level goes into "Quarterly reports".
    await page.locator('#breadcrumbs a', { hasText: 'My files' }).click();
    await page.getByRole('button', { name: 'Open the folder Quarterly reports' }).waitFor();
    await page.getByRole('button', { name: 'New folder' }).click();
    await page.locator('#name-input').fill('Archive');
    await page.locator('#name-submit').click();
    await page.getByRole('button', { name: 'Move the folder Archive' }).click();
    await page.locator('#move-target').selectOption({ label: '› Quarterly reports' });
    await page.locator('#move-submit').click();
    await expect.poll(() => page.locator('#folder-list li').count()).toBe(1);
    // Then the folder, with everything left in it (a file and the folder moved into it).
    await page.getByRole('button', { name: 'Delete the folder Quarterly reports' }).click();
    await page.locator('#confirm-ok').click();
    await expect.poll(() => page.locator('#confirm-modal-title').textContent()).toMatch(/is not empty/);
    await page.locator('#confirm-ok').click();
    await expect.poll(() => page.locator('#folder-list li').count()).toBe(0);
    const [{ n }] = await world.dataSource.query('SELECT count(*)::int AS n FROM files');
    expect(n).toBe(0);
    const [{ folders }] = await world.dataSource.query('SELECT count(*)::int AS folders FROM folders');
    expect(folders).toBe(0);
    // The two refusals the test asked for (the taken name, the non-empty folder) are the only errors.
    const conflict = 'console: Failed to load resource: the server responded with a status of 409 (Conflict)';
    expect(problems).toEqual([conflict, conflict]);
    expect(await page.evaluate('window.__cspViolations')).toEqual([]);
  });
});
