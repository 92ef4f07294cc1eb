import { type CanActivate, type ExecutionContext, ForbiddenException, Injectable } from '@nestjs/common';
import { csrfSync } from 'csrf-sync';
import type { Request } from 'express';
import { isFullySignedIn } from './session-state.js';

/**
 * Synchronizer-token CSRF protection (csrf-sync): the token lives in the server session and must come
 * back in the `_csrf` form field or the `X-CSRF-Token` header on every unsafe request that relies on
 * the session cookie. Requests authenticated by `Authorization: Bearer` carry no ambient credential,
 * so they are exempt; so is `POST /api/v1/tokens`, which authenticates by username and password in
 * its body and never reads the session.
 */
const csrf = csrfSync({
  getTokenFromRequest: (req: Request) => {
    const field = (req.body as Record<string, unknown> | undefined)?._csrf;
    if (typeof field === 'string') return field;
    const header = req.headers['x-csrf-token'];
    return typeof header === 'string' ? header : undefined;
  },
});

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const EXEMPT = new Set(['POST /api/v1/tokens']);

export function csrfToken(req: Request): string {
  return csrf.generateToken(req);
}

export function hasBearer(req: Request): boolean {
  return typeof req.headers.authorization === 'string';
}

@Injectable()
export class CsrfGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request>();
    if (SAFE_METHODS.has(req.method) || hasBearer(req)) return true;
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
