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
}

/**
 * Who is asking, as the {@link AccessPolicy} sees it. A discriminated union on `kind`: share links
 * join it as their own kind, and the policy's exhaustive switches then say where they need a rule.
 */
export type Principal = UserPrincipal;

/** The principal of a request that passed ApiAuthGuard or PageAuthGuard (page routes are session-only). */
export function principalOf(req: Request): UserPrincipal {
  if (!req.user) throw new UnauthorizedException('Authentication required.');
  return { kind: 'user', userId: req.user.id, via: req.authMethod ?? 'session' };
}
