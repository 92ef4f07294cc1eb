import { STATUS_CODES } from 'node:http';
import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  DATABASE_UNAVAILABLE_MESSAGE,
  FolderGoneError,
  InvalidCursorError,
  isDatabaseUnavailable,
  NameTakenError,
  redactRequestUrl,
} from '#common';
import { ClientAbortedError } from './client-aborted.error.js';
import { csrfToken } from './csrf.js';
import { RedirectException } from './redirect.exception.js';
import { sessionUser } from './session-state.js';

/** The JSON error shape every API error uses. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
}

export function wantsJson(req: Request): boolean {
  if (req.path.startsWith('/api/') || req.path === '/readyz' || req.path === '/healthz') return true;
  return req.accepts(['html', 'json']) === 'json';
}

function messageOf(exception: HttpException): string {
  const body = exception.getResponse();
  if (typeof body === 'string') return body;
  const message = (body as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  return typeof message === 'string' ? message : exception.message;
}

/**
 * One place that turns errors into responses: JSON `{statusCode, error, message}` for the API and
 * friendly HTML pages for the browser. Unexpected errors are logged once here and never leak details.
 */
@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    let status: number = HttpStatus.INTERNAL_SERVER_ERROR;
    let message = 'Something went wrong on our side. Please try again later.';
    let extra: object = {};
    if (exception instanceof RedirectException && !res.headersSent) {
      res.redirect(303, exception.location);
      return;
    }
    if (exception instanceof HttpException) {
      status = exception.getStatus();
      message = messageOf(exception);
      const response = exception.getResponse();
      if (typeof response === 'object') extra = response;
      const retryAfter = (extra as { retryAfterSeconds?: unknown }).retryAfterSeconds;
      if (typeof retryAfter === 'number') res.setHeader('Retry-After', String(retryAfter));
    } else if (exception instanceof InvalidCursorError) {
      status = HttpStatus.BAD_REQUEST;
      message = exception.message;
    } else if (exception instanceof NameTakenError) {
      status = HttpStatus.CONFLICT;
      message = exception.message;
    } else if (exception instanceof FolderGoneError) {
      status = HttpStatus.NOT_FOUND;
      message = exception.message;
    } else if (isDatabaseUnavailable(exception)) {
      // PostgreSQL restarting or unreachable: the pool reconnects by itself; the client may retry.
      status = HttpStatus.SERVICE_UNAVAILABLE;
      message = DATABASE_UNAVAILABLE_MESSAGE;
      this.logger.warn(`${req.method} ${req.path}: database unavailable (${(exception as Error).message})`);
    } else if (exception instanceof ClientAbortedError) {
      this.logger.warn(
        `${req.method} ${redactRequestUrl(req.path)}: ${exception.message}; partial upload removed`,
      );
      return;
    } else {
      this.logger.error(
        `${req.method} ${redactRequestUrl(req.path)} failed`,
        (exception as Error)?.stack ?? String(exception),
      );
    }
    if (res.headersSent) {
      // A stream failed after the status line went out: cut the connection so the client sees an error.
      if (!res.writableEnded) res.destroy();
      return;
    }
    sendError(req, res, status, message, extra);
  }
}

/** Answers with the JSON error shape for API clients or the friendly error page for browsers. */
export function sendError(
  req: Request,
  res: Response,
  status: number,
  message: string,
  extra: object = {},
): void {
  const body: ErrorBody = { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message };
  if (wantsJson(req)) {
    res.status(status).json({ ...extra, ...body });
    return;
  }
  const user = sessionUser(req);
  res.status(status).render(status === 404 ? 'pages/404' : 'pages/error', {
    title: status === 404 ? 'Page not found' : body.error,
    ...body,
    user,
    // The navbar's Log out form needs it, as on every other page of a signed-in user.
    csrfToken: user ? csrfToken(req) : undefined,
  });
}
