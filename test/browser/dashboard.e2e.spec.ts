import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseContentDisposition } from 'content-disposition';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
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

/** Records every value each upload card's progress bars take, and every toast ever shown. */
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
      for (const n of m.addedNodes) {
        if (n.classList && n.classList.contains('toast')) window.__toasts.push(n.dataset.kind + ': ' + n.textContent.trim());
      }
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow'] });
`;

function watch(target: Page): void {
  target.on('pageerror', (error) => problems.pageErrors.push(error.message));
  target.on('console', (message) => {
    const text = message.text();
    if (/Content.Security.Policy/i.test(text)) problems.csp.push(text);
    else if (message.type() === 'error') problems.consoleErrors.push(text);
  });
  target.on('request', (req) => {
    if (req.method() === 'POST' && new URL(req.url()).pathname === '/api/v1/uploads') uploadRequests++;
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
        toasts.some((t) => t.startsWith('success:') && t.includes(`${name} is encrypted and stored`)),
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
    // A tab whose Socket.IO frames pass through a relay that swallows every job event.
    const tab = await context.newPage();
    watch(tab);
    tab.on('filechooser', () => undefined);
    let swallowed = 0;
    const routes: { close(): Promise<void> }[] = [];
    await tab.routeWebSocket(/\/socket\.io\//, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((message) => {
        if (typeof message === 'string' && message.includes('"job:')) swallowed++;
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
      const said = toasts.filter((t) => t.startsWith('success:') && t.includes(' is encrypted and stored'));
      expect(said.some((t) => t.includes(`${stored} is encrypted and stored`))).toBe(true);
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

  it('reported no CSP violation, page error or console error', async () => {
    await collectCsp(page);
    expect(problems).toEqual({ pageErrors: [], consoleErrors: [], csp: [] });
  });
});
