import { existsSync } from 'node:fs';
import {
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  chromium,
  type Page,
} from 'playwright-core';
import { TEST_PASSWORD, type TestUser } from './users.js';

/** Debian's chromium (`apt-get install -y chromium`), or CHROMIUM_PATH. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Headless chromium for the browser specs. launch() gives it a fresh temporary profile of its own (it
 * refuses --user-data-dir) and removes it on close; the other flags keep it off the network and quiet.
 */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `No chromium at ${CHROMIUM}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A fresh context (with `initScript` run in every page first) whose page has signed `user` in through the
 * login form and landed on the dashboard at `base`/home.
 */
export async function signedInPage(
  browser: Browser,
  base: string,
  user: TestUser,
  options: { context?: BrowserContextOptions; initScript?: string; watch?: (page: Page) => void } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options.context });
  if (options.initScript) await context.addInitScript(options.initScript);
  const page = await context.newPage();
  options.watch?.(page);
  await page.goto(`${base}/login`);
  await page.getByLabel('Username').fill(user.username);
  await page.getByLabel('Password').fill(TEST_PASSWORD);
  await Promise.all([page.waitForURL(`${base}/home`), page.getByRole('button', { name: 'Sign in' }).click()]);
  return { context, page };
}

/** An init script that records the page's CSP violations in `window.__cspViolations`. */
export const CSP_PROBE = `
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
  });
`;

/** Pushes the page's script errors, console errors and CSP reports onto `problems`. */
export function collectProblems(page: Page, problems: string[]): void {
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || /Content.Security.Policy/i.test(m.text()))
      problems.push(`console: ${m.text()}`);
  });
}
