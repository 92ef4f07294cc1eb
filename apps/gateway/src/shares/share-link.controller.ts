import { Body, Controller, Get, HttpStatus, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { type AuditAction, AuditRepository, type DownloadLease, TESS_CONFIG, type TessConfig } from '#common';
import { PASSWORD_MAX_LENGTH } from '../auth/password.service.js';
import { DownloadResponder } from '../downloads/download.responder.js';
import { utcLabel } from '../home/home.controller.js';
import { csrfToken } from '../http/csrf.js';
import { wantsJson } from '../http/http-exception.filter.js';
import { formatBytes } from '../http/views.js';
import { ShareThrottledException, ShareThrottleService } from './share-throttle.service.js';
import {
  cookieValues,
  signUnlockCookie,
  UNLOCK_COOKIE_LIFETIME_MS,
  unlockCookieKey,
  unlockCookieValid,
} from './share-token.js';
import { DOWNLOAD_LEASE_MS, type GoneReason, type LinkState, SharesService } from './shares.service.js';

type Live = Extract<LinkState, { kind: 'live' }>;

const GONE: Record<GoneReason, { heading: string; message: string; icon: string }> = {
  revoked: {
    heading: 'This link was revoked',
    message:
      'The person who shared it has switched it off. Ask them for a new link if you still need the file.',
    icon: 'slash-circle',
  },
  expired: {
    heading: 'This link has expired',
    message: 'Share links work for a limited time only. Ask the person who shared it for a new link.',
    icon: 'hourglass-bottom',
  },
  exhausted: {
    heading: 'This link has been used up',
    message: 'It has been downloaded as many times as the person who shared it allowed.',
    icon: 'box-arrow-down',
  },
  unavailable: {
    heading: 'The shared file is no longer available',
    message: 'It was deleted or can no longer be served. Ask the person who shared it for a new link.',
    icon: 'file-earmark-x',
  },
};

/** Headers every /s/ answer carries: the token in the URL must not travel in a Referer, be cached or indexed. */
function linkHeaders(res: Response): void {
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'private, no-store');
  res.setHeader('X-Robots-Tag', 'noindex, nofollow');
}

/**
 * The public side of share links (docs/security.md 31a-31l): `GET /s/:token` (the link page),
 * `POST /s/:token` (the password form, CSRF-checked like every form) and `GET /s/:token/content` (the
 * verified download). No session is needed. The content goes through the access policy as a `share`
 * principal and the same DownloadResponder as the owner's downloads.
 */
@ApiExcludeController()
@Controller('s')
export class ShareLinkController {
  private readonly cookieKey: Buffer;
  private readonly cookieName: string;
  private readonly cookieSecure: boolean;

  constructor(
    @Inject(TESS_CONFIG) config: TessConfig,
    private readonly shares: SharesService,
    private readonly throttle: ShareThrottleService,
    private readonly downloads: DownloadResponder,
    private readonly audit: AuditRepository,
  ) {
    this.cookieKey = unlockCookieKey(config.session.secret);
    this.cookieSecure = config.session.cookieSecure;
    // `__Secure-`: only ever set over HTTPS. (`__Host-` would need Path=/, and the path is the link's own.)
    this.cookieName = this.cookieSecure ? '__Secure-tess.share' : 'tess.share';
  }

  @Get(':token')
  async page(@Req() req: Request, @Res() res: Response, @Param('token') token: string): Promise<void> {
    linkHeaders(res);
    const live = await this.lookup(req, res, token);
    if (!live) return;
    await this.auditLink('share.viewed', req, live);
    this.renderPage(req, res, live, token, HttpStatus.OK);
  }

  @Post(':token')
  async unlock(
    @Req() req: Request,
    @Res() res: Response,
    @Param('token') token: string,
    @Body() body: unknown,
  ): Promise<void> {
    linkHeaders(res);
    const live = await this.lookup(req, res, token);
    if (!live) return;
    if (!live.share.passwordHash) {
      res.redirect(303, `/s/${token}`);
      return;
    }
    const ip = req.ip ?? 'unknown';
    const raw = (body as { password?: unknown } | undefined)?.password;
    const password = typeof raw === 'string' ? raw : '';
    let attempt: Awaited<ReturnType<ShareThrottleService['beginPassword']>>;
    try {
      attempt = await this.throttle.beginPassword(live.share.id, ip);
    } catch (error) {
      if (!(error instanceof ShareThrottledException)) throw error;
      await this.auditLink('share.throttled', req, live, { limit: error.limit });
      res.setHeader('Retry-After', String(error.retryAfterSeconds));
      this.renderPage(req, res, live, token, HttpStatus.TOO_MANY_REQUESTS, error.message);
      return;
    }
    const right =
      password.length > 0 &&
      [...password].length <= PASSWORD_MAX_LENGTH &&
      (await this.shares.checkPassword(live.share, password));
    if (!right) {
      await this.auditLink('share.password_failed', req, live);
      this.renderPage(req, res, live, token, HttpStatus.UNAUTHORIZED, 'That password is not right.');
      return;
    }
    await this.throttle.passwordRight(attempt);
    res.cookie(
      this.cookieName,
      signUnlockCookie(this.cookieKey, live.share.id, live.share.tokenHash, this.shares.now()),
      {
        path: `/s/${token}`,
        httpOnly: true,
        sameSite: 'strict',
        secure: this.cookieSecure,
        maxAge: UNLOCK_COOKIE_LIFETIME_MS,
      },
    );
    res.redirect(303, `/s/${token}`);
  }

  /**
   * The verified plaintext. A limited link reserves a download slot first (none left: 410, or 409 while
   * the last ones are being downloaded), ignores Range (always the whole file), renews the slot while
   * the body streams, and counts it only when the whole verified body was sent; a failed or aborted
   * download gives its slot back, so the last allowed download can be retried. HEAD and 304 count nothing.
   */
  @Get(':token/content')
  async content(@Req() req: Request, @Res() res: Response, @Param('token') token: string): Promise<void> {
    linkHeaders(res);
    const live = await this.lookup(req, res, token);
    if (!live) return;
    const { share, file } = live;
    if (share.passwordHash && !this.unlocked(req, live)) {
      this.answer(req, res, HttpStatus.UNAUTHORIZED, {
        heading: 'This link needs its password',
        message: 'Enter the password on the link page first; then the download starts from there.',
        icon: 'lock',
        retry: `/s/${token}`,
      });
      return;
    }
    const limited = share.maxDownloads !== null;
    let lease: DownloadLease | null = null;
    if (limited) {
      lease = await this.shares.reserve(share);
      if (!lease) {
        const again = await this.shares.resolve(token);
        if (again.kind === 'gone') this.answer(req, res, HttpStatus.GONE, GONE[again.reason]);
        else
          this.answer(req, res, HttpStatus.CONFLICT, {
            heading: 'The last downloads are in progress',
            message:
              'Every download this link allows is being made right now. If one of them fails, its turn comes free: try again in a minute.',
            icon: 'hourglass-split',
            retry: `/s/${token}`,
          });
        return;
      }
    }
    const held = lease;
    const renewal = held
      ? setInterval(() => void this.shares.renew(held).catch(() => undefined), DOWNLOAD_LEASE_MS / 4)
      : undefined;
    renewal?.unref();
    let outcome: Awaited<ReturnType<DownloadResponder['send']>>;
    try {
      outcome = await this.downloads.send(file, req, res, null, { ranges: !limited });
    } catch (error) {
      if (held) await this.shares.release(held);
      throw error;
    } finally {
      clearInterval(renewal);
    }
    const whole = req.method === 'GET' && outcome.status === 200 && outcome.body === 'complete';
    if (!whole) {
      if (held) await this.shares.release(held);
      return;
    }
    const downloads = await this.shares.countDownload(share, held);
    await this.auditLink('share.downloaded', req, live, {
      bytes: file.size,
      downloads,
      filename: file.filename,
    });
  }

  /** An audit event of the link's owner about the link, with the visitor's address. */
  private auditLink(
    action: AuditAction,
    req: Request,
    live: Live,
    details: Record<string, string | number | boolean | null> = {},
  ): Promise<void> {
    return this.audit.record({
      action,
      userId: live.share.ownerId,
      fileId: live.file.id,
      ip: req.ip,
      details: { shareId: live.share.id, ...details },
    });
  }

  /** The live link, or null once the answer (429, 404, 410) was sent. */
  private async lookup(req: Request, res: Response, token: string): Promise<Live | null> {
    const ip = req.ip ?? 'unknown';
    try {
      await this.throttle.checkAddress(ip);
    } catch (error) {
      if (!(error instanceof ShareThrottledException)) throw error;
      res.setHeader('Retry-After', String(error.retryAfterSeconds));
      this.answer(req, res, HttpStatus.TOO_MANY_REQUESTS, {
        heading: 'Too many attempts',
        message: error.message,
        icon: 'shield-exclamation',
      });
      return null;
    }
    const state = await this.shares.resolve(token);
    if (state.kind === 'unknown') {
      await this.throttle.unknownToken(ip);
      this.answer(req, res, HttpStatus.NOT_FOUND, {
        heading: 'No such link',
        message: 'There is no share link at this address. Check that you copied all of it.',
        icon: 'signpost-split',
      });
      return null;
    }
    if (state.kind === 'gone') {
      this.answer(req, res, HttpStatus.GONE, GONE[state.reason]);
      return null;
    }
    return state;
  }

  private unlocked(req: Request, live: Live): boolean {
    const now = this.shares.now();
    return cookieValues(req.headers.cookie, this.cookieName).some((value) =>
      unlockCookieValid(this.cookieKey, value, live.share.id, live.share.tokenHash, now),
    );
  }

  private renderPage(
    req: Request,
    res: Response,
    live: Live,
    token: string,
    status: number,
    formError?: string,
  ) {
    const { share, file } = live;
    const limited = share.maxDownloads !== null;
    res.status(status).render('pages/share', {
      title: 'Shared file',
      csrfToken: csrfToken(req),
      token,
      sharedBy: live.sharedBy,
      filename: file.filename,
      size: file.size,
      sizeLabel: formatBytes(file.size),
      sha256: file.sha256,
      expiresIso: share.expiresAt.toISOString(),
      expiresLabel: utcLabel(share.expiresAt),
      limited,
      maxDownloads: share.maxDownloads,
      downloadsLeft: limited ? share.maxDownloads! - share.downloads : null,
      needsPassword: share.passwordHash !== null && !this.unlocked(req, live),
      formError,
    });
  }

  /** A page for browsers, `{statusCode, error, message}` for clients asking for JSON. */
  private answer(
    req: Request,
    res: Response,
    status: number,
    page: { heading: string; message: string; icon: string; retry?: string },
  ): void {
    if (wantsJson(req)) {
      res.status(status).json({ statusCode: status, error: page.heading, message: page.message });
      return;
    }
    res.status(status).render('pages/share-gone', { title: page.heading, statusCode: status, ...page });
  }
}
