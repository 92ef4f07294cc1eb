import {
  type CanActivate,
  type ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  NotFoundException,
} from '@nestjs/common';
import type { Request } from 'express';
import { TESS_CONFIG, type TessConfig } from '#common';
import { AccessPolicy } from '../access/access.policy.js';
import { principalOf } from '../access/principal.js';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { MfaService } from '../auth/mfa.service.js';
import { claimsBearer } from '../http/csrf.js';
import { RedirectException } from '../http/redirect.exception.js';
import { isFullySignedIn } from '../http/session-state.js';

/** What the admin area makes of a request. */
export type AdminVerdict = 'admin' | 'not-admin' | 'needs-second-factor';

export const ADMIN_NEEDS_SECOND_FACTOR =
  'Administrators need two-factor sign-in (ADMIN_MFA_REQUIRED): turn it on at /account/security first.';

/**
 * The one admin check (docs/security.md item 37) behind every admin page, API route and the queue
 * dashboard: an authenticated principal the AccessPolicy lets administer, with a second factor when
 * ADMIN_MFA_REQUIRED. Everyone else gets exactly what an unknown route answers (404 `Cannot <METHOD>
 * <url>`), so the admin area's routes cannot be told apart from routes that do not exist.
 */
@Injectable()
export class AdminGate {
  constructor(
    private readonly policy: AccessPolicy,
    private readonly mfa: MfaService,
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
  ) {}

  /** For a request that passed authentication (session or bearer). */
  async check(req: Request): Promise<AdminVerdict> {
    if (!req.user) return 'not-admin';
    const principal = principalOf(req);
    if (!this.policy.administers(principal)) return 'not-admin';
    if (this.config.admin.mfaRequired && !(await this.mfa.hasSecondFactor(principal.userId)))
      return 'needs-second-factor';
    return 'admin';
  }
}

/** The 404 of a route that does not exist (Nest's own wording). */
export function notFound(req: Request): NotFoundException {
  return new NotFoundException(`Cannot ${req.method} ${req.originalUrl}`);
}

/** /admin pages: a fully signed-in admin's session; an admin without a required second factor enrols. */
@Injectable()
export class AdminPageGuard implements CanActivate {
  constructor(private readonly gate: AdminGate) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    if (!isFullySignedIn(req)) throw notFound(req);
    const verdict = await this.gate.check(req);
    if (verdict === 'not-admin') throw notFound(req);
    if (verdict === 'needs-second-factor') {
      req.session.flash = {
        kind: 'info',
        text: 'Administrators need two-factor sign-in: set it up here, then open the admin area again.',
      };
      throw new RedirectException('/account/security');
    }
    return true;
  }
}

/**
 * /api/v1/admin: an admin's bearer token or signed-in session (CSRF checked for sessions by the global
 * guard). A request with no credential at all is a non-admin too (404); an invalid token answers 401 as
 * on every /api/v1 route.
 */
@Injectable()
export class AdminApiGuard extends ApiAuthGuard {
  constructor(private readonly gate: AdminGate) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    if (!claimsBearer(req) && !isFullySignedIn(req)) throw notFound(req);
    await super.canActivate(context);
    const verdict = await this.gate.check(req);
    if (verdict === 'not-admin') throw notFound(req);
    if (verdict === 'needs-second-factor') throw new ForbiddenException(ADMIN_NEEDS_SECOND_FACTOR);
    return true;
  }
}
