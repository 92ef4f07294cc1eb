import {
  type ExecutionContext,
  Injectable,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import type { Request } from 'express';
import { DATABASE_UNAVAILABLE_MESSAGE, isDatabaseUnavailable } from '#common';
import { claimsBearer } from '../http/csrf.js';
import { isFullySignedIn } from '../http/session-state.js';

/**
 * /api/v1 accepts either a bearer token or a logged-in session (whose unsafe requests the global
 * CsrfGuard already checked). A request whose Authorization header names the Bearer scheme is judged
 * by that header alone, never by its cookie; any other scheme (Basic from a proxy) is ignored here.
 */
@Injectable()
export class ApiAuthGuard extends AuthGuard('bearer') {
  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request>();
    if (claimsBearer(req)) {
      await super.canActivate(context);
      req.authMethod = 'token';
      return true;
    }
    if (isFullySignedIn(req)) {
      req.authMethod = 'session';
      return true;
    }
    throw new UnauthorizedException('Authentication required: log in or send Authorization: Bearer <token>.');
  }

  override handleRequest<TUser = Express.User>(err: unknown, user: TUser | false): TUser {
    // A token the strategy recognized but refused (expired) says why; anything else stays generic.
    if (err instanceof UnauthorizedException) throw err;
    // The token could not be looked up: not a bad token (401) but a database outage (503).
    if (isDatabaseUnavailable(err)) throw new ServiceUnavailableException(DATABASE_UNAVAILABLE_MESSAGE);
    if (err || !user) throw new UnauthorizedException('The bearer token is invalid or has been revoked.');
    return user;
  }
}
