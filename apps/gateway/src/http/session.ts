import { RedisStore } from 'connect-redis';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import session from 'express-session';
import type { Redis } from 'ioredis';
import type { TessConfig } from '#common';
import { isBearerApiRequest } from './csrf.js';

export const SESSION_COOKIE = 'tess.sid';

/** Where connect-redis keeps session `id`: `${sessionKeyPrefix(config)}${id}`. */
export function sessionKeyPrefix(config: TessConfig): string {
  return `${config.redis.prefix}:sess:`;
}

/**
 * Server-side sessions in Redis so every gateway replica shares them. The idle timeout is the
 * cookie's rolling maxAge, which connect-redis also uses as the key's TTL: an idle session expires in
 * Redis itself. The absolute timeout is checked on every request from `authenticatedAt`.
 */
export function sessionMiddleware(config: TessConfig, redis: Redis): RequestHandler {
  return session({
    name: SESSION_COOKIE,
    secret: config.session.secret,
    store: new RedisStore({ client: redis, prefix: sessionKeyPrefix(config) }),
    resave: false,
    saveUninitialized: false,
    rolling: true,
    unset: 'destroy',
    cookie: {
      httpOnly: true,
      sameSite: 'lax',
      secure: config.session.cookieSecure,
      maxAge: config.session.idleTimeoutMs,
      path: '/',
    },
  });
}

/**
 * Runs `middleware` except for API requests with a valid Bearer header: ApiAuthGuard and CsrfGuard
 * judge those by the token alone (`isBearerApiRequest`), so loading, creating or rolling a session for
 * them is wasted work on the busiest path (scripted uploads).
 */
export function unlessBearerApi(middleware: RequestHandler): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) =>
    isBearerApiRequest(req) ? next() : middleware(req, res, next);
}

/** Replaces a session older than the absolute timeout with a fresh, anonymous one. */
export function absoluteTimeout(config: TessConfig): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    const started = req.session?.authenticatedAt;
    if (started === undefined || Date.now() - started <= config.session.absoluteTimeoutMs) return next();
    req.session.regenerate((err) => next(err));
  };
}
