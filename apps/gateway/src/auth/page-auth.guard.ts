import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { RedirectException } from '../http/redirect.exception.js';
import { isFullySignedIn } from '../http/session-state.js';

/** Pages that need a signed-in user redirect everyone else to /login. */
@Injectable()
export class PageAuthGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (isFullySignedIn(context.switchToHttp().getRequest<Request>())) return true;
    throw new RedirectException('/login');
  }
}
