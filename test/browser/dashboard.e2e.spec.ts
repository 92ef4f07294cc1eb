import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseContentDisposition } from 'content-disposition';
import type { Browser, BrowserContext, Locator, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { MiB, sha256 } from '../support/bytes.js';
import { ROOT } from '../support/paths.js';
import { createUser, TEST_PASSWORD } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against the real gateway
 * and an in-process crypto worker: register, log in, drop and pick files, watch both progress phases,
 * then download, verify, copy, delete, the client-side size check, phone width, paging and live rows.
 * The page's CSP is the production one, so any inline script or style it needed would show up here.
 */

/** The README's screenshot; rewritten only when TESS_UPDATE_SCREENSHOT=1, so test runs leave the tree clean. */
const SCREENSHOT = join(ROOT, 'docs/screenshot-dashboard.png');
const UPDATE_SCREENSHOT = process.env.TESS_UPDATE_SCREENSHOT === '1';
const MAX_FILE_SIZE = 30 * MiB;
const PASSWORD = 'a long and memorable passphrase';
/** Set TESS_BROWSER_SHOTS=<dir> to keep extra screenshots (full page, phone width) for a look. */
const SHOTS = process.env.TESS_BROWSER_SHOTS;

let world: World;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let base: string;
let scratch: string;
const username = `browser_${randomBytes(3).toString('hex')}`;

/** Everything the pages reported that a finished dashboard must never produce. */
const problems = { pageErrors: [] as string[], consoleErrors: [] as string[], csp: [] as string[] };
let uploadRequests = 0;

/** The uploaded files by name: their bytes' SHA-256 as computed where they were made. */
const expected = new Map<string, { size: number; sha256: string }>();

/** Records CSP violations from inside the page (installed before any page script runs). */
const CSP_PROBE = `
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':' + e.lineNumber);
  });
`;

/**
 * Records every value each upload card's progress bars take, and every text a toast ever shows (a grouped
 * toast is recorded again each time another file joins it).
 */
const RECORDER = `
  window.__bars = {};
  window.__toasts = [];
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      const t = m.target;
      if (m.type === 'attributes' && t.dataset && t.dataset.bar) {
        const name = t.closest('.upload-card').querySelector('[data-field="name"]').textContent;
        const key = name + '|' + t.dataset.bar;
        (window.__bars[key] = window.__bars[key] || []).push(Number(t.getAttribute('aria-valuenow')));
      }
      const toast = m.type === 'childList' && t.closest && t.closest('#toasts .toast');
      if (toast) window.__toasts.push(toast.dataset.kind + ': ' + toast.textContent.trim());
      for (const n of m.addedNodes) {
        if (n.classList && n.classList.contains('toast')) window.__toasts.push(n.dataset.kind + ': ' + n.textContent.trim());
      }
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow'] });
`;

function watch(target: Page, sink: typeof problems = problems): void {
  target.on('pageerror', (error) => sink.pageErrors.push(error.message));
  target.on('console', (message) => {
    const text = message.text();
    if (/Content.Security.Policy/i.test(text)) sink.csp.push(text);
    else if (message.type() === 'error') sink.consoleErrors.push(text);
  });
  target.on('request', (req) => {
    // The dashboard uploads through tus: one creation (POST /api/v1/tus) per file.
    if (req.method() !== 'POST' || new URL(req.url()).pathname !== '/api/v1/tus') return;
    uploadRequests++;
  });
}

async function collectCsp(target: Page): Promise<void> {
  problems.csp.push(...((await target.evaluate('window.__cspViolations || []')) as string[]));
}

function card(name: string): Locator {
  return page.locator('.upload-card').filter({ has: page.locator('[data-field="name"]', { hasText: name }) });
}

function row(target: Page, name: string): Locator {
  return target
    .locator('#files-body tr[data-file-id]')
    .filter({ has: target.locator('[data-field="filename"]', { hasText: name }) });
}

async function signIn(target: Page, user: string, password: string): Promise<void> {
  await target.goto(`${base}/login`);
  await target.getByLabel('Username').fill(user);
  await target.getByLabel('Password').fill(password);
  await Promise.all([
    target.waitForURL(`${base}/home`),
    target.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await target.locator('#live-status[data-state="connected"]').waitFor();
}

beforeAll(async () => {
  browser = await launchChromium();
  // The page's Origin must be on the Socket.IO allowlist, so the gateway listens on a port picked first.
  world = await createWorld({
    ownOrigins: true,
    workers: 'in-process',
    env: { MAX_FILE_SIZE: String(MAX_FILE_SIZE) },
  });
  base = world.base;
  scratch = await mkdtemp(join(tmpdir(), 'tess-browser-'));
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  await context.addInitScript(CSP_PROBE);
  page = await context.newPage();
  watch(page);
  // Intercepting file pickers is switched on asynchronously when the first listener is added; do it now so
  // a picker opened later by a key press is never missed.
  page.on('filechooser', () => undefined);
});

afterAll(async () => {
  await browser?.close();
  await world?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('dashboard in a browser', { timeout: 180_000 }, () => {
  it('registers, logs out and logs in again through the pages', async () => {
    await page.goto(`${base}/`);
    await page.waitForURL(`${base}/login`);
    await page.getByRole('link', { name: 'Create one' }).click();
    await page.getByLabel('Username').fill(username);
    await page.getByLabel('Email').fill(`${username}@example.test`);
    await page.getByLabel('Password').fill(PASSWORD);
    await Promise.all([
      page.waitForURL(`${base}/home`),
      page.getByRole('button', { name: 'Create account' }).click(),
    ]);
    await expect(page.getByRole('alert').first().textContent()).resolves.toContain(
      `Welcome to TESS, ${username}`,
    );
    await Promise.all([
      page.waitForURL(`${base}/login`),
      page.getByRole('button', { name: 'Log out' }).click(),
    ]);

    const response = await page.goto(`${base}/login`);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await signIn(page, username, PASSWORD);
    await expect(page.locator('h1').textContent()).resolves.toContain('My files');
    expect(await page.locator('#empty-state').isVisible()).toBe(true);
    expect(await page.locator('#files-wrap').isVisible()).toBe(false);
  });

  it('uploads a dropped 20 MiB file and two picked ones, each bar reaching 100% and a success toast', async () => {
    await page.evaluate(RECORDER);

    // Drop: a DataTransfer holding a 20 MiB File of random bytes, made inside the page.
    const transfer = await page.evaluateHandle(`(() => {
      const bytes = new Uint8Array(20 * 1024 * 1024);
      for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
      window.__dropped = bytes;
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped-20MiB.bin', { type: 'application/octet-stream' }));
      return dt;
    })()`);
    const droppedSha = (await page.evaluate(`crypto.subtle.digest('SHA-256', window.__dropped).then((d) =>
      Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join(''))`)) as string;
    expected.set('dropped-20MiB.bin', { size: 20 * MiB, sha256: droppedSha });
    for (const type of ['dragenter', 'dragover']) {
      await page.dispatchEvent('#drop-zone', type, { dataTransfer: transfer });
    }
    expect(await page.locator('#drop-zone').getAttribute('class')).toContain('is-dragover');
    await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: transfer });
    await transfer.dispose();
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'uploading.png') });

    // Pick: the drop zone is a button; Enter opens the (multiple) file picker.
    const picked = [
      { name: 'quarterly report.pdf', mimeType: 'application/pdf', buffer: randomBytes(3 * MiB + 12_345) },
      {
        name: 'notes-ünïcödé.txt',
        mimeType: 'text/plain',
        buffer: Buffer.from('TESS keeps this safe.\n'.repeat(4000)),
      },
    ];
    for (const file of picked)
      expected.set(file.name, { size: file.buffer.length, sha256: sha256(file.buffer) });
    await page.locator('#drop-zone').focus();
    const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.keyboard.press('Enter')]);
    expect(chooser.isMultiple()).toBe(true);
    await chooser.setFiles(picked);

    for (const [name] of expected) {
      await card(name).and(page.locator('[data-state="stored"]')).waitFor({ timeout: 60_000 });
      for (const bar of ['transfer', 'process']) {
        expect(await card(name).locator(`[data-bar="${bar}"]`).getAttribute('aria-valuenow')).toBe('100');
      }
    }
    expect(uploadRequests).toBe(3);
    const bars = (await page.evaluate('window.__bars')) as Record<string, number[]>;
    const toasts = (await page.evaluate('window.__toasts')) as string[];
    for (const name of expected.keys()) {
      for (const bar of ['transfer', 'process']) {
        const seen = bars[`${name}|${bar}`] ?? [];
        expect(seen.at(-1), `${name} ${bar}`).toBe(100);
        expect(seen, `${name} ${bar} never goes back`).toEqual([...seen].sort((a, b) => a - b));
      }
      expect(
        toasts.some(
          (t) => t.startsWith('success:') && t.includes(name) && / (is|are) encrypted and stored/.test(t),
        ),
      ).toBe(true);
    }
    await page.locator('#toasts .toast[data-kind="success"]').first().waitFor();
  });

  it('lists the uploads in "My files" as stored, with size, times and both hashes', async () => {
    const rows = page.locator('#files-body tr[data-file-id]');
    await expect.poll(() => rows.count()).toBe(3);
    expect(await page.locator('#empty-state').isVisible()).toBe(false);
    for (const [name, file] of expected) {
      const tr = row(page, name);
      await tr.and(page.locator('[data-status="stored"]')).waitFor();
      expect(await tr.locator('[data-field="status"]').textContent()).toBe('stored');
      expect(await tr.locator('[data-field="sha256"]').getAttribute('title')).toBe(file.sha256);
      expect(await tr.locator('[data-field="sha256"]').textContent()).toBe(`${file.sha256.slice(0, 12)}…`);
      expect(await tr.locator('[data-field="sha1"]').getAttribute('title')).toMatch(/^[0-9a-f]{40}$/);
      expect(await tr.locator('[data-field="created"]').getAttribute('datetime')).toMatch(/^\d{4}-/);
      expect(await tr.locator('[data-field="stored-line"]').isVisible()).toBe(true);
      expect(await tr.locator('[data-action="download"]').getAttribute('aria-disabled')).toBeNull();
    }
    expect(await row(page, 'dropped-20MiB.bin').locator('[data-field="size"]').textContent()).toBe('20 MiB');

    // The picture for the README: finished uploads and the list. The toasts would cover the table, so they
    // are closed first, by their close buttons as a user would.
    const toasts = page.locator('#toasts .toast.show');
    for (let shown = await toasts.count(); shown > 0; shown = await toasts.count()) {
      await toasts.first().getByRole('button', { name: 'Close' }).click();
      await expect.poll(() => toasts.count()).toBeLessThan(shown);
    }
    await page.evaluate('document.activeElement && document.activeElement.blur()');
    await page.mouse.move(0, 0);
    const shot = await page.screenshot({ fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 930 } });
    expect(shot.length).toBeGreaterThan(10_000);
    if (UPDATE_SCREENSHOT) {
      await mkdir(dirname(SCREENSHOT), { recursive: true });
      await writeFile(SCREENSHOT, shot);
    }
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'desktop-full.png'), fullPage: true });
  });

  it('copies a SHA-256 to the clipboard', async () => {
    const { sha256: hash } = expected.get('quarterly report.pdf')!;
    await row(page, 'quarterly report.pdf')
      .getByRole('button', { name: /Copy the SHA-256/ })
      .click();
    await page.locator('#toasts .toast', { hasText: 'SHA-256 copied' }).waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(hash);
  });

  it('downloads a file whose bytes have the SHA-256 that was uploaded', async () => {
    const name = 'dropped-20MiB.bin';
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      row(page, name)
        .getByRole('link', { name: `Download ${name}` })
        .click(),
    ]);
    expect(download.suggestedFilename()).toBe(name);
    const bytes = await readFile((await download.path())!);
    expect(bytes.length).toBe(20 * MiB);
    expect(sha256(bytes)).toBe(expected.get(name)!.sha256);
  });

  it('verifies a file and shows the result', async () => {
    const name = 'notes-ünïcödé.txt';
    await row(page, name)
      .getByRole('button', { name: `Verify ${name}` })
      .click();
    const result = row(page, name).locator('[data-field="verify"]');
    await result.filter({ hasText: 'Verified OK' }).waitFor();
    await page.locator('#toasts .toast[data-kind="success"]', { hasText: 'Verified' }).waitFor();
  });

  it('deletes a file after the confirmation modal, and it is gone', async () => {
    const name = 'quarterly report.pdf';
    const id = await row(page, name).getAttribute('data-file-id');
    await row(page, name)
      .getByRole('button', { name: `Delete ${name}` })
      .click();
    const modal = page.locator('#delete-modal');
    await modal.and(page.locator('.show')).waitFor();
    expect(await modal.locator('[data-field="filename"]').textContent()).toBe(name);
    // Cancel first: nothing happens.
    await modal.getByRole('button', { name: 'Cancel' }).first().click();
    await modal.waitFor({ state: 'hidden' });
    expect(await row(page, name).count()).toBe(1);

    await row(page, name)
      .getByRole('button', { name: `Delete ${name}` })
      .click();
    await modal.and(page.locator('.show')).waitFor();
    await modal.locator('#confirm-delete').click();
    await modal.waitFor({ state: 'hidden' });
    await row(page, name).waitFor({ state: 'detached' });
    await page.locator('#toasts .toast', { hasText: `${name} and its key are gone` }).waitFor();
    expect((await context.request.get(`${base}/api/v1/files/${id}`)).status()).toBe(404);
    expect(await page.locator('#files-body tr[data-file-id]').count()).toBe(2);
  });

  it('refuses a file over MAX_FILE_SIZE in the browser, without sending it', async () => {
    const before = uploadRequests;
    const big = join(scratch, 'too-big.iso');
    await writeFile(big, Buffer.alloc(31 * MiB, 7));
    await page.setInputFiles('#file-input', big);
    const rejected = card('too-big.iso');
    await rejected.and(page.locator('[data-state="rejected"]')).waitFor();
    expect(await rejected.locator('[data-field="message"]').textContent()).toBe(
      'too-big.iso is 31 MiB, over the 30 MiB limit per file. It was not uploaded.',
    );
    await page.locator('#toasts .toast[data-kind="error"]', { hasText: 'File too large' }).waitFor();
    await page.waitForTimeout(300);
    expect(uploadRequests).toBe(before);
    expect(await row(page, 'too-big.iso').count()).toBe(0);
  });

  it('keeps the list after a reload and fits a phone-width screen', async () => {
    await page.reload();
    await page.locator('#live-status[data-state="connected"]').waitFor();
    expect(await page.locator('#files-body tr[data-file-id][data-status="stored"]').count()).toBe(2);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(100);
    const overflow = (await page.evaluate(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    )) as number;
    expect(overflow).toBeLessThanOrEqual(0);
    expect(await page.locator('#files-table thead').isVisible()).toBe(false);
    const name = 'dropped-20MiB.bin';
    expect(
      await row(page, name)
        .getByRole('link', { name: `Download ${name}` })
        .isVisible(),
    ).toBe(true);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'phone-full.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('never leaves a stale bar when job events are lost, and re-reads the list after a reconnect', async () => {
    // A tab whose Socket.IO frames pass through a relay that swallows every job and file event.
    const tab = await context.newPage();
    watch(tab);
    tab.on('filechooser', () => undefined);
    let swallowed = 0;
    const routes: { close(): Promise<void> }[] = [];
    await tab.routeWebSocket(/\/socket\.io\//, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((message) => {
        if (typeof message === 'string' && /"(?:job|file):/.test(message)) swallowed++;
        else ws.send(message);
      });
      routes.push(ws);
    });
    await tab.goto(`${base}/home`);
    await tab.locator('#live-status[data-state="connected"]').waitFor();

    // An upload from this tab: its card must still finish, from the REST job state.
    const bytes = randomBytes(6 * MiB);
    await tab.setInputFiles('#file-input', {
      name: 'events-lost.bin',
      mimeType: 'application/octet-stream',
      buffer: bytes,
    });
    const lost = tab.locator('.upload-card[data-state="stored"]', { hasText: 'events-lost.bin' });
    await lost.waitFor({ timeout: 30_000 });
    expect(await lost.locator('[data-bar="process"]').getAttribute('aria-valuenow')).toBe('100');
    expect(await row(tab, 'events-lost.bin').locator('[data-field="sha256"]').getAttribute('title')).toBe(
      sha256(bytes),
    );
    expect(swallowed).toBeGreaterThan(0);

    // A file stored elsewhere while this tab hears nothing: it appears once the socket reconnects.
    const res = await fetch(`${base}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username, password: PASSWORD, name: 'browser test' }),
    });
    const { token } = (await res.json()) as { token: string };
    const form = new FormData();
    form.append('file', new Blob(['made by a script']), 'while-away.txt');
    const up = await fetch(`${base}/api/v1/uploads`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}` },
      body: form,
    });
    const fileId = ((await up.json()) as { files: { id: string }[] }).files[0]!.id;
    await expect
      .poll(
        async () =>
          ((await (await context.request.get(`${base}/api/v1/files/${fileId}`)).json()) as { status: string })
            .status,
      )
      .toBe('stored');
    await tab.waitForTimeout(500);
    expect(await row(tab, 'while-away.txt').count()).toBe(0);
    await routes.at(-1)!.close();
    await row(tab, 'while-away.txt').and(tab.locator('[data-status="stored"]')).waitFor({ timeout: 20_000 });
    await tab.locator('#live-status[data-state="connected"]').waitFor();
    await collectCsp(tab);
    await tab.close();
  });

  it('pages with "Load more" and adds rows live for uploads made elsewhere', async () => {
    const other = await createUser(world.server, `pager_${world.id}`);
    const upload = async (names: string[]) => {
      const form = new FormData();
      for (const name of names) form.append('file', new Blob([`content of ${name}`]), name);
      const res = await fetch(`${base}/api/v1/uploads`, { method: 'POST', headers: other.auth, body: form });
      expect(res.status).toBe(202);
    };
    const names = Array.from({ length: 26 }, (_, i) => `file-${String(i).padStart(2, '0')}.txt`);
    await upload(names.slice(0, 20));
    await upload(names.slice(20));

    const second = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await second.addInitScript(CSP_PROBE);
    const tab = await second.newPage();
    watch(tab);
    await signIn(tab, other.username, TEST_PASSWORD);
    const rows = tab.locator('#files-body tr[data-file-id]');
    expect(await rows.count()).toBe(25);
    expect(await rows.first().locator('[data-field="filename"]').textContent()).toBe('file-25.txt');
    await tab.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(() => rows.count()).toBe(26);
    expect(await rows.last().locator('[data-field="filename"]').textContent()).toBe('file-00.txt');
    await tab.locator('#files-footer').waitFor({ state: 'hidden' });

    // A file uploaded by another client (here the API) shows up at the top and turns stored live.
    await upload(['from-the-cli.txt']);
    await row(tab, 'from-the-cli.txt')
      .and(tab.locator('[data-status="stored"]'))
      .waitFor({ timeout: 30_000 });
    expect(await rows.first().locator('[data-field="filename"]').textContent()).toBe('from-the-cli.txt');
    await collectCsp(tab);
    await second.close();
  });

  it('groups the toasts of a multi-file upload, caps them and keeps them off every control', async () => {
    await page.evaluate(RECORDER);
    const names = Array.from({ length: 6 }, (_, i) => `toast-${i + 1}.txt`);
    await page.setInputFiles(
      '#file-input',
      names.map((name) => ({ name, mimeType: 'text/plain', buffer: Buffer.from(`${name}\n`) })),
    );
    for (const name of names)
      await card(name).and(page.locator('[data-state="stored"]')).waitFor({ timeout: 30_000 });
    const shown = page.locator('#toasts .toast.show');
    // One toast for all of them, not six.
    await page.locator('#toasts .toast.show[data-group="stored"]', { hasText: '6 files stored' }).waitFor();
    expect(await page.locator('#toasts .toast.show[data-group="stored"]').count()).toBe(1);
    const said = (await page.evaluate('window.__toasts')) as string[];
    // Completion order decides which three are named.
    expect(said.filter((t) => t.startsWith('success:')).at(-1)).toMatch(
      /^success: 6 files stored(toast-\d\.txt, ){2}toast-\d\.txt and 3 more are encrypted and stored\.$/,
    );
    // However many notices come, at most three stand at once; copying the same hash again is one notice.
    for (const name of names) {
      for (let i = 0; i < 2; i++) {
        await row(page, name)
          .getByRole('button', { name: /Copy the SHA-256/ })
          .click();
      }
    }
    await page.locator('#toasts .toast.show', { hasText: 'SHA-256 copied' }).first().waitFor();
    expect(await page.locator('#toasts .toast.show', { hasText: 'SHA-256 copied' }).count()).toBeLessThan(3);
    await expect.poll(() => shown.count()).toBeLessThanOrEqual(3);
    await page.waitForTimeout(500);
    expect(await shown.count()).toBeLessThanOrEqual(3);

    // Wherever the page is scrolled, no toast covers a control of the lists: the Actions column, the copy
    // buttons, Refresh, Load more, the upload cards' buttons.
    const covered = async () =>
      (await page.evaluate(`(() => {
        const boxes = [...document.querySelectorAll('#toasts .toast.show')].map((t) => t.getBoundingClientRect());
        const controls = [...document.querySelectorAll('#files-body button, #files-body a, #refresh-files, #load-more, #clear-finished, .upload-card button')]
          .filter((c) => !c.closest('#toasts') && c.getClientRects().length > 0);
        const hit = [];
        for (const c of controls) {
          const r = c.getBoundingClientRect();
          if (r.width === 0 || r.height === 0) continue;
          for (const b of boxes) {
            if (r.left < b.right && r.right > b.left && r.top < b.bottom && r.bottom > b.top) {
              hit.push((c.getAttribute('aria-label') || c.textContent || c.id).trim().slice(0, 60));
            }
          }
        }
        return hit;
      })()`)) as string[];
    expect(await shown.count()).toBeGreaterThan(0);
    expect(await covered()).toEqual([]);
    await page.locator('#refresh-files').scrollIntoViewIfNeeded();
    await page.evaluate(
      "document.querySelector('#files-body tr:last-child').scrollIntoView({ block: 'end' })",
    );
    expect(await covered()).toEqual([]);
    await page.evaluate('window.scrollTo(0, document.body.scrollHeight)');
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'toasts.png') });
    expect(await covered()).toEqual([]);
    await page.evaluate('window.scrollTo(0, 0)');
  });

  it('lists a file queued in another tab at once, before any worker has taken it', async () => {
    const tab = await context.newPage();
    watch(tab);
    await tab.goto(`${base}/home`);
    await tab.locator('#live-status[data-state="connected"]').waitFor();
    // No worker: the file stays queued, so no job event can be what brings the row.
    await world.stopInProcessWorker();
    try {
      await page.setInputFiles('#file-input', {
        name: 'queued-elsewhere.txt',
        mimeType: 'text/plain',
        buffer: Buffer.from('queued while no worker runs\n'),
      });
      await row(tab, 'queued-elsewhere.txt')
        .and(tab.locator('[data-status="queued"]'))
        .waitFor({ timeout: 5000 });
    } finally {
      await world.startInProcessWorker();
    }
    await row(tab, 'queued-elsewhere.txt')
      .and(tab.locator('[data-status="stored"]'))
      .waitFor({ timeout: 30_000 });
    await card('queued-elsewhere.txt')
      .and(page.locator('[data-state="stored"]'))
      .waitFor({ timeout: 30_000 });
    await collectCsp(tab);
    await tab.close();
  });

  it('disables the drop zone of a tab signed out elsewhere and says so in plain words', async () => {
    const other = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await other.addInitScript(CSP_PROBE);
    const first = await other.newPage();
    const second = await other.newPage();
    // Requests the ended session makes are refused (console errors by design): these tabs keep their own record.
    const signedOutTab = { pageErrors: [] as string[], consoleErrors: [] as string[], csp: [] as string[] };
    watch(first, signedOutTab);
    watch(second, signedOutTab);
    await signIn(first, username, PASSWORD);
    await second.goto(`${base}/home`);
    await second.locator('#live-status[data-state="connected"]').waitFor();
    expect(await second.locator('#signed-out').isVisible()).toBe(false);

    // Log out in the first tab: the second one hears its socket end and learns why over REST.
    await Promise.all([
      first.waitForURL(`${base}/login`),
      first.getByRole('button', { name: 'Log out' }).click(),
    ]);
    const banner = second.locator('#signed-out');
    await banner.waitFor({ state: 'visible', timeout: 10_000 });
    expect((await banner.textContent())?.replace(/\s+/g, ' ').trim()).toBe(
      'You were signed out — sign in again.',
    );
    expect(await banner.getByRole('link', { name: 'sign in again' }).getAttribute('href')).toBe('/login');
    expect(await second.locator('#drop-zone').isDisabled()).toBe(true);
    await second.locator('#live-status[data-state="offline"]').waitFor();

    // Nothing more is sent, and every refusal reads the same, never the API's developer wording.
    const sent = uploadRequests;
    await second.setInputFiles('#file-input', {
      name: 'after-logout.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('x'),
    });
    await second.getByRole('button', { name: 'Refresh the file list' }).click();
    await second
      .locator('#toasts .toast[data-kind="error"]', { hasText: 'You were signed out — sign in again.' })
      .waitFor();
    expect(uploadRequests).toBe(sent);
    expect(await second.locator('.upload-card').count()).toBe(0);
    expect(await second.locator('body').textContent()).not.toContain('Authentication required');
    signedOutTab.csp.push(...((await second.evaluate('window.__cspViolations || []')) as string[]));
    expect(signedOutTab.pageErrors).toEqual([]);
    expect(signedOutTab.csp).toEqual([]);
    for (const error of signedOutTab.consoleErrors) expect(error).toMatch(/status of 401/);
    await other.close();
  });

  it('shows the stored name on the card, in the toast, the list and the download; usage follows', async () => {
    await page.evaluate(RECORDER);
    const usage = async () =>
      (await (await context.request.get(`${base}/api/v1/usage`)).json()) as { bytes: number; files: number };
    const before = await usage();
    const usageLine = page.locator('#usage');
    expect(await usageLine.getAttribute('data-files')).toBe(String(before.files));
    // Browsers send `"` as %22; a name with a slash keeps only its last part on the server.
    const files = [
      {
        sent: 'Quarterly "final" report.txt',
        stored: 'Quarterly "final" report.txt',
        buffer: randomBytes(1500),
      },
      { sent: 'résumé (final) <b>x</b>.pdf', stored: 'b>.pdf', buffer: randomBytes(2500) },
    ];
    await page.setInputFiles(
      '#file-input',
      files.map((f) => ({ name: f.sent, mimeType: 'application/octet-stream', buffer: f.buffer })),
    );
    for (const { stored, buffer } of files) {
      const named = page.locator('.upload-card').filter({ has: page.getByText(stored, { exact: true }) });
      await named.and(page.locator('[data-state="stored"]')).waitFor({ timeout: 30_000 });
      expect(await named.locator('[data-field="name"]').getAttribute('title')).toBe(stored);
      const listed = page
        .locator('#files-body tr[data-file-id]')
        .filter({ has: page.getByText(stored, { exact: true }) });
      await listed.and(page.locator('[data-status="stored"]')).waitFor();
      expect(await listed.locator('[data-field="filename"]').textContent()).toBe(stored);
      const link = listed.getByRole('link', { name: `Download ${stored}` });
      const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
      expect(sha256(await readFile((await download.path())!))).toBe(sha256(buffer));
      const served = await context.request.get(`${base}${await link.getAttribute('href')}`);
      const disposition = parseContentDisposition(served.headers()['content-disposition'] ?? '');
      expect(disposition.parameters.filename).toBe(stored);
      // The file is offered under the stored name, except for what chromium itself will not put in a
      // file name on any platform (`"`, `<`, `>` become `_`).
      expect(download.suggestedFilename()).toBe(stored.replace(/["<>]/g, '_'));
    }
    const toasts = (await page.evaluate('window.__toasts')) as string[];
    for (const { sent, stored } of files) {
      const said = toasts.filter((t) => t.startsWith('success:') && / (is|are) encrypted and stored/.test(t));
      expect(said.some((t) => t.includes(stored))).toBe(true);
      expect(said.some((t) => t.includes(sent) && sent !== stored)).toBe(false);
      expect(said.some((t) => t.includes('%22'))).toBe(false);
    }
    const after = await usage();
    expect(after).toMatchObject({ bytes: before.bytes + 4000, files: before.files + 2 });
    await expect.poll(() => usageLine.getAttribute('data-bytes')).toBe(String(after.bytes));
    expect(await usageLine.locator('[data-field="text"]').textContent()).toMatch(
      new RegExp(`^Storage used: .+ · ${after.files} files$`),
    );
  });

  it('sends each picked file in its own request, so one over the limit never takes the others down', async () => {
    const sentBefore = uploadRequests;
    // The answer to each upload the page creates (one tus upload per file).
    const accepted: number[] = [];
    const onResponse = (res: Response) => {
      const req = res.request();
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/api/v1/tus')
        accepted.push(res.status());
    };
    page.on('response', onResponse);
    // From paths: a 31 MiB buffer through the DevTools protocol is slow on a busy machine.
    const small = ['batch one.txt', 'batch two.txt'].map((name) => ({ name, path: join(scratch, name) }));
    const big = { name: 'batch-too-big.bin', path: join(scratch, 'batch-too-big.bin') };
    for (const { name, path } of small) await writeFile(path, `${name}\n`.repeat(100));
    await writeFile(big.path, Buffer.alloc(31 * MiB, 1));
    await page.setInputFiles('#file-input', [small[0]!.path, big.path, small[1]!.path]);
    await card(big.name).and(page.locator('[data-state="rejected"]')).waitFor();
    for (const { name } of small) {
      await card(name).and(page.locator('[data-state="stored"]')).waitFor({ timeout: 30_000 });
      await row(page, name).and(page.locator('[data-status="stored"]')).waitFor();
    }
    expect(uploadRequests - sentBefore).toBe(2);
    page.off('response', onResponse);
    expect(accepted).toEqual([201, 201]);
    expect(await row(page, big.name).count()).toBe(0);
  });

  it('shows Activity with file names, local times, filters, pages, and cards at phone width', async () => {
    // Enough events for a second page: a few API tokens more.
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${base}/api/v1/tokens`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username, password: PASSWORD, name: `activity ${i}` }),
      });
      expect(res.status).toBe(201);
    }
    const india = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      timezoneId: 'Asia/Kolkata',
    });
    await india.addInitScript(CSP_PROBE);
    const tab = await india.newPage();
    watch(tab);
    await signIn(tab, username, PASSWORD);
    await tab.getByRole('link', { name: 'Activity' }).click();
    await tab.waitForURL(`${base}/activity`);

    // File events name the file (as it was when the event was written), the id on hover.
    const quoted = 'Quarterly "final" report.txt';
    const downloaded = tab
      .locator('#activity-table tr[data-action="file.downloaded"]')
      .filter({ has: tab.locator('[data-field="filename"]', { hasText: quoted }) })
      .first();
    const name = downloaded.locator('[data-field="filename"]');
    expect(await name.textContent()).toBe(quoted);
    const id = await downloaded.getAttribute('data-file-id');
    expect(await name.getAttribute('title')).toBe(`File id ${id}`);
    expect(await downloaded.getByRole('button', { name: `Copy the file id of ${quoted}` }).count()).toBe(1);
    for (const action of ['file.stored', 'upload.accepted']) {
      expect(
        await tab.locator(`#activity-table tr[data-action="${action}"] [data-field="filename"]`).count(),
        action,
      ).toBeGreaterThan(0);
    }
    // The verification came early in this run: every resumable upload since (upload.started, then
    // upload.accepted) has pushed it past the first page, where its type's filter finds it.
    await tab.goto(`${base}/activity?type=integrity`);
    expect(
      await tab.locator('#activity-table tr[data-action="file.verified"] [data-field="filename"]').count(),
    ).toBeGreaterThan(0);
    await tab.goto(`${base}/activity`);
    expect(
      await tab.locator('#activity-table tr[data-action="file.stored"] [data-field="file-id"]').count(),
    ).toBe(0);

    // Times in the browser's zone (UTC+5:30 here), as the dashboard shows them.
    const when = tab.locator('#activity-table time').first();
    const iso = (await when.getAttribute('datetime'))!;
    const local = new Intl.DateTimeFormat('en-US', {
      dateStyle: 'medium',
      timeStyle: 'short',
      timeZone: 'Asia/Kolkata',
    });
    expect(await when.textContent()).toBe(local.format(new Date(iso)));
    expect(await tab.locator('#activity-table').textContent()).not.toContain('UTC');

    // Filter by type, then by the user's own day.
    await tab.locator('#filter-type').selectOption('downloads');
    await Promise.all([
      tab.waitForURL(/type=downloads/),
      tab.getByRole('button', { name: 'Filter' }).click(),
    ]);
    expect(new URL(tab.url()).searchParams.get('tz')).toBe('-330');
    const actions = await tab
      .locator('#activity-table tr[data-action]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
    expect(actions.length).toBeGreaterThan(0);
    expect(new Set(actions)).toEqual(new Set(['file.downloaded']));
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Kolkata' }).format(new Date());
    await tab.locator('#filter-from').fill(today);
    await tab.locator('#filter-to').fill(today);
    await Promise.all([tab.waitForURL(/from=/), tab.getByRole('button', { name: 'Filter' }).click()]);
    expect(await tab.locator('#activity-table tr[data-action]').count()).toBe(actions.length);
    await tab.getByRole('link', { name: 'Clear' }).click();
    await tab.waitForURL(`${base}/activity`);

    // Pages of 50, the next one older, none repeated.
    const [{ count }] = (await world.dataSource.query(
      'SELECT count(*)::int AS count FROM audit_events a JOIN users u ON u.id = a.user_id WHERE u.username = $1',
      [username],
    )) as [{ count: number }];
    expect(count).toBeGreaterThan(50);
    const firstPage = await tab
      .locator('#activity-table time')
      .evaluateAll((t) => t.map((n) => n.getAttribute('datetime')));
    expect(firstPage).toHaveLength(50);
    await Promise.all([tab.waitForURL(/cursor=/), tab.getByRole('link', { name: 'Older events' }).click()]);
    const secondPage = await tab
      .locator('#activity-table time')
      .evaluateAll((t) => t.map((n) => n.getAttribute('datetime')));
    expect(secondPage).toHaveLength(Math.min(50, count - 50));
    expect(secondPage[0]! <= firstPage.at(-1)!).toBe(true);
    await tab.getByRole('link', { name: 'Newest' }).click();

    // Phone width: one card per event, nothing wider than the screen, names on one line.
    await tab.setViewportSize({ width: 390, height: 844 });
    await tab.waitForTimeout(100);
    expect(
      await tab.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth'),
    ).toBeLessThanOrEqual(0);
    expect(await tab.locator('#activity-table thead').isVisible()).toBe(false);
    const layout = (await tab.evaluate(`(() => {
      const table = document.getElementById('activity-table');
      const names = [...table.querySelectorAll('[data-field="filename"]')];
      return {
        overflowing: table.scrollWidth - table.clientWidth,
        rowsAsCards: [...table.querySelectorAll('tbody tr')].every((tr) => getComputedStyle(tr).display === 'block'),
        wrappedNames: names.filter((n) => n.getClientRects().length > 1).map((n) => n.textContent),
        names: names.length,
      };
    })()`)) as { overflowing: number; rowsAsCards: boolean; wrappedNames: string[]; names: number };
    expect(layout).toMatchObject({ rowsAsCards: true, wrappedNames: [] });
    expect(layout.overflowing).toBeLessThanOrEqual(0);
    expect(layout.names).toBeGreaterThan(0);
    if (SHOTS) await tab.screenshot({ path: join(SHOTS, 'activity-phone.png'), fullPage: true });
    await collectCsp(tab);
    await india.close();
  });

  it('serves the API documentation under the CSP: no violation, no console error, no blank band', async () => {
    const docs = await context.newPage();
    const seen = { pageErrors: [] as string[], consoleErrors: [] as string[], csp: [] as string[] };
    watch(docs, seen);
    const response = await docs.goto(`${base}/api/docs`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("style-src 'self'");
    await docs.locator('.swagger-ui .info .title', { hasText: 'TESS API' }).waitFor();
    await docs.locator('.opblock-tag', { hasText: /files/i }).first().waitFor();
    // Expanding an operation renders Swagger UI's inline-styled parts (markdown, schemas) too.
    await docs.locator('.opblock-summary').first().click();
    await docs.locator('.opblock-body').first().waitFor();
    await docs.waitForTimeout(300);
    seen.csp.push(...((await docs.evaluate('window.__cspViolations || []')) as string[]));
    expect(seen).toEqual({ pageErrors: [], consoleErrors: [], csp: [] });
    // The page starts with Swagger UI itself: nothing (such as an unstyled icon sprite) above it.
    const top = (await docs.evaluate(
      "document.querySelector('#swagger-ui').getBoundingClientRect().top + window.scrollY",
    )) as number;
    expect(top).toBeLessThanOrEqual(1);
    if (SHOTS) await docs.screenshot({ path: join(SHOTS, 'api-docs.png') });
    await docs.close();
  });

  it('reported no CSP violation, page error or console error', async () => {
    await collectCsp(page);
    expect(problems).toEqual({ pageErrors: [], consoleErrors: [], csp: [] });
  });
});
