import { UnauthorizedException } from '@nestjs/common';
import type { Request } from 'express';

/** A logged-in user, by session or by API token. */
export interface UserPrincipal {
  kind: 'user';
  userId: string;
  /** How the request authenticated: a session cookie or `Authorization: Bearer`. */
  via: 'session' | 'token';
  /** The API token's id, once the bearer strategy carries it; absent for sessions. */
  tokenId?: string;
  /** As the session or token lookup read it on this request (docs/security.md item 37). */
  role: 'user' | 'admin';
}

/**
 * Someone outside TESS holding a share link (and its password cookie, when it has one): may read the
 * one file the link names while the link is live, and nothing else. Built only by the link routes
 * (apps/gateway/src/shares/) after they checked the link.
 */
export interface SharePrincipal {
  kind: 'share';
  shareId: string;
  /** The owner of the link and of the file. */
  ownerId: string;
  fileId: string;
}

/**
 * Who is asking, as the {@link AccessPolicy} sees it. A discriminated union on `kind`: the policy's
 * exhaustive switches say what each kind may do.
 */
export type Principal = UserPrincipal | SharePrincipal;

/** The principal of a request that passed ApiAuthGuard or PageAuthGuard (page routes are session-only). */
export function principalOf(req: Request): UserPrincipal {
  if (!req.user) throw new UnauthorizedException('Authentication required.');
  return {
    kind: 'user',
    userId: req.user.id,
    via: req.authMethod ?? 'session',
    role: req.user.role ?? 'user',
  };
}
