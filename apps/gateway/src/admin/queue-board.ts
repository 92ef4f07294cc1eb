import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { QUEUE_NAMES, type TessConfig } from '#common';
import { sendError } from '../http/http-exception.filter.js';
import { isFullySignedIn } from '../http/session-state.js';
import { JobQueue } from '../infra/job-queue.js';
import { AdminGate } from './admin.gate.js';

/** The read-only queue dashboard, and the one whose actions work once the admin confirmed them. */
export const QUEUE_BOARD_PATH = '/admin/queues';
export const QUEUE_ACTIONS_PATH = '/admin/queue-actions';
/** How long a confirmation opens the dashboard's actions. */
export const QUEUE_ACTIONS_MS = 10 * 60_000;

const SAFE = new Set(['GET', 'HEAD']);

/**
 * Whether an unsafe request comes from our own pages: its Origin is one of ALLOWED_ORIGINS, or the
 * browser says it is same-origin (Sec-Fetch-Site). bull-board's UI sends its actions with fetch and no
 * CSRF token of ours, so this (with the SameSite=Lax session cookie, which a cross-site request does not
 * carry) is its CSRF defense (OWASP: verifying origin with standard headers).
 */
function sameOrigin(req: Request, config: TessConfig): boolean {
  const origin = req.headers.origin;
  if (typeof origin === 'string') return config.http.allowedOrigins.includes(origin);
  return req.headers['sec-fetch-site'] === 'same-origin';
}

/**
 * bull-board (@bull-board/api + @bull-board/express) behind the admin check (docs/security.md item 37).
 * Two mounts of the queues (crypto, and follow: the followers of uploads still arriving, docs/security.md
 * item 40): /admin/queues in bull-board's readOnlyMode (it shows jobs, data and failure
 * reasons; it refuses every action) and /admin/queue-actions, whose actions (retry, promote, clean,
 * remove) work only for `QUEUE_ACTIONS_MS` after the admin confirmed them with the CSRF-checked, audited
 * POST /admin/system/queue-actions on the System page. Everyone who is not an admin gets the 404 of an
 * unknown route, as on every admin page. Job data holds ids only (no file bytes, keys or secrets), so the
 * dashboard shows metadata only, like the rest of the admin area.
 *
 * CSP: bull-board's page keeps our policy but for one directive: it sets `<base href>` to its mount
 * path, so these responses say `base-uri 'self'` instead of `'none'`. Its scripts and stylesheet come
 * from its own static path on our origin and its config is a JSON data block (not executed); the web
 * font it links from a third-party origin is blocked by `style-src 'self'` (it falls back to the system
 * font, and no request leaves for that origin), and so are the loading placeholder's inline styles.
 */
export function mountQueueBoard(app: NestExpressApplication, config: TessConfig): void {
  const gate = app.get(AdminGate);
  const jobs = app.get(JobQueue);
  const queues = [jobs.queue(QUEUE_NAMES.crypto), jobs.queue(QUEUE_NAMES.follow)];
  // bull-board and its UI are built on the first request that passed the admin check: only admins
  // use them, and loading them at start cost every gateway about 3 MiB of heap.
  const board = (basePath: string, readOnlyMode: boolean): RequestHandler => {
    let router: Promise<RequestHandler> | undefined;
    const build = async (): Promise<RequestHandler> => {
      const [{ createBullBoard }, { BullMQAdapter }, { ExpressAdapter }] = await Promise.all([
        import('@bull-board/api'),
        import('@bull-board/api/bullMQAdapter'),
        import('@bull-board/express'),
      ]);
      const adapter = new ExpressAdapter();
      adapter.setBasePath(basePath);
      createBullBoard({
        queues: queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode })),
        serverAdapter: adapter,
        options: { uiConfig: { boardTitle: readOnlyMode ? 'TESS queues' : 'TESS queues (actions on)' } },
      });
      return adapter.getRouter() as RequestHandler;
    };
    return (req, res, next) => {
      router ??= build();
      router.then((handle) => handle(req, res, next), next);
    };
  };
  const guard = (actions: boolean) => async (req: Request, res: Response, next: NextFunction) => {
    const notFound = () => sendError(req, res, 404, `Cannot ${req.method} ${req.originalUrl}`);
    try {
      if (!isFullySignedIn(req)) {
        notFound();
        return;
      }
      const verdict = await gate.check(req);
      if (verdict === 'not-admin') {
        notFound();
        return;
      }
      if (verdict === 'needs-second-factor') {
        res.redirect(303, '/account/security');
        return;
      }
      res.setHeader('Cache-Control', 'private, no-store');
      // bull-board's page resolves its assets against <base href="/admin/queues/">, which our
      // `base-uri 'none'` forbids: these pages (and only these) allow a base on our own origin.
      const csp = res.getHeader('Content-Security-Policy');
      if (typeof csp === 'string')
        res.setHeader('Content-Security-Policy', csp.replace("base-uri 'none'", "base-uri 'self'"));
      const unlocked = (req.session.queueActionsUntil ?? 0) > Date.now();
      if (actions && !unlocked) {
        if (SAFE.has(req.method)) res.redirect(303, '/admin/system#queue-actions');
        else sendError(req, res, 403, 'Queue actions are locked: confirm them on the admin System page.');
        return;
      }
      if (!SAFE.has(req.method) && (!actions || !sameOrigin(req, config))) {
        sendError(req, res, 403, 'This queue dashboard is read-only here.');
        return;
      }
      next();
    } catch (error) {
      next(error);
    }
  };
  app.use(QUEUE_ACTIONS_PATH, guard(true), board(QUEUE_ACTIONS_PATH, false));
  app.use(QUEUE_BOARD_PATH, guard(false), board(QUEUE_BOARD_PATH, true));
}
