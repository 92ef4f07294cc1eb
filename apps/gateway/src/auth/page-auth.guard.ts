import {
  type CanActivate,
  type ExecutionContext,
  HttpException,
  HttpStatus,
  Injectable,
} from '@nestjs/common';
import type { Request } from 'express';

/** Thrown to send the browser elsewhere (303); the exception filter turns it into a redirect. */
export class RedirectException extends HttpException {
  constructor(readonly location: string) {
    super('Redirect', HttpStatus.SEE_OTHER);
  }
}

/** Pages that need a logged-in user redirect anonymous visitors to /login. */
@Injectable()
export class PageAuthGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (context.switchToHttp().getRequest<Request>().isAuthenticated()) return true;
    throw new RedirectException('/login');
  }
}
