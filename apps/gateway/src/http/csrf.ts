import type { IncomingMessage } from 'node:http';
import { type CanActivate, type ExecutionContext, ForbiddenException, Injectable } from '@nestjs/common';
import { csrfSync } from 'csrf-sync';
import type { Request } from 'express';
import { isFullySignedIn } from './session-state.js';

/** RFC 6750 section 2.1: `Bearer` and one b64token, nothing else. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

/** The token of a syntactically valid `Authorization: Bearer <token>` header, else undefined. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
}

/** Whether the header names the Bearer scheme at all (valid or not). */
export function claimsBearer(req: IncomingMessage): boolean {
  return /^Bearer(\s|$)/i.test(req.headers.authorization ?? '');
}

/**
 * An /api/ request with a valid Bearer header: judged by the token alone, so it needs no session and
 * no CSRF token. Any other Authorization header (Basic or Negotiate, which a browser adds by itself
 * behind such a proxy) is ambient and changes nothing.
 */
export function isBearerApiRequest(req: IncomingMessage): boolean {
  return (req.url ?? '').startsWith('/api/') && bearerToken(req) !== undefined;
}

const TOKEN_BYTES = 32;
const TOKEN = new RegExp(`^[0-9a-f]{${TOKEN_BYTES * 2}}$`);

/**
 * Anonymous forms (login, registration) keep their token in a cookie instead of a server session, so
 * a visitor stores nothing in Redis until they sign in. The cookie copies the session cookie's
 * attributes (HttpOnly, SameSite=Lax, Secure in production): a cross-site POST does not carry it, and
 * in production the `__Host-` prefix keeps a sibling subdomain from planting one.
 */
function formCookieName(req: Request): string {
  return req.session?.cookie.secure === true ? '__Host-tess.csrf' : 'tess.csrf';
}

function formCookie(req: Request): string | undefined {
  // One cookie of ours holding hex only, so no decoding is needed: a pattern instead of a cookie parser.
  const name = formCookieName(req).replace(/[.]/g, '\\.');
  const value = new RegExp(`(?:^|;\\s*)${name}=([^;]*)`).exec(req.headers.cookie ?? '')?.[1];
  return value !== undefined && TOKEN.test(value) ? value : undefined;
}

/**
 * Synchronizer-token CSRF protection (csrf-sync): the token comes back in the `_csrf` form field or
 * the `X-CSRF-Token` header on every unsafe request that relies on a cookie. A signed-in user's token
 * lives in their server session; an anonymous visitor's in the form cookie above. Requests judged by
 * a Bearer token carry no ambient credential, so they are exempt; so is `POST /api/v1/tokens`, which
 * authenticates by username and password in its body and never reads the session.
 */
const csrf = csrfSync({
  size: TOKEN_BYTES,
  getTokenFromRequest: (req: Request) => {
    const field = (req.body as Record<string, unknown> | undefined)?._csrf;
    if (typeof field === 'string') return field;
    const header = req.headers['x-csrf-token'];
    return typeof header === 'string' ? header : undefined;
  },
  getTokenFromState: (req: Request) => (isFullySignedIn(req) ? req.session.csrfToken : formCookie(req)),
  storeTokenInState: (req: Request, token) => {
    if (isFullySignedIn(req)) {
      req.session.csrfToken = token;
      return;
    }
    const session = req.session?.cookie;
    if (typeof token !== 'string') return;
    req.res?.cookie(formCookieName(req), token, {
      path: '/',
      secure: session?.secure === true,
      sameSite: session?.sameSite ?? 'lax',
      httpOnly: session?.httpOnly ?? true,
    });
  },
});

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const EXEMPT = new Set(['POST /api/v1/tokens']);

export function csrfToken(req: Request): string {
  // Signed in now: the anonymous form cookie has done its job.
  if (isFullySignedIn(req) && formCookie(req) !== undefined)
    req.res?.clearCookie(formCookieName(req), { path: '/' });
  return csrf.generateToken(req);
}

@Injectable()
export class CsrfGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    if (SAFE_METHODS.has(req.method) || isBearerApiRequest(req)) return true;
    // An API call without a logged-in session carries no ambient credential: let the auth guard
    // answer 401. (Page forms are always checked, including login and registration.)
    if (req.path.startsWith('/api/') && !isFullySignedIn(req)) return true;
    if (EXEMPT.has(`${req.method} ${req.path.replace(/\/+$/, '')}`)) return true;
    if (!csrf.isRequestValid(req)) {
      throw new ForbiddenException('Missing or invalid CSRF token. Reload the page and try again.');
    }
    return true;
  }
}
