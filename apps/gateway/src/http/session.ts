import { RedisStore } from 'connect-redis';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import session from 'express-session';
import type { Redis } from 'ioredis';
import type { TessConfig } from '#common';
import { isBearerApiRequest } from './csrf.js';
import { isFullySignedIn } from './session-state.js';

export const SESSION_COOKIE = 'tess.sid';

/** Where connect-redis keeps session `id`: `${sessionKeyPrefix(config)}${id}`. */
export function sessionKeyPrefix(config: TessConfig): string {
  return `${config.redis.prefix}:sess:`;
}

/**
 * Where an ended session's mark lives: `${endedSessionKey(config, id)}`. A request of the session that
 * was already running when it was ended may save it back when it finishes (express-session writes a
 * changed session at the end of its request); the mark makes such a session anonymous at its next use.
 */
export function endedSessionKey(config: TessConfig, sessionId: string): string {
  return `${config.redis.prefix}:sess-ended:${sessionId}`;
}

/**
 * Refuses a signed-in session that was ended (see {@link endedSessionKey}): it is destroyed and the
 * request goes on anonymous. In the session chain, so the Socket.IO handshake is judged the same way.
 */
export function endedSessions(config: TessConfig, redis: Redis): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!req.user || !req.sessionID) return next();
    redis.exists(endedSessionKey(config, req.sessionID)).then(
      (ended) => {
        if (ended === 0) return next();
        req.user = undefined;
        req.session.destroy((err) => next(err));
      },
      (err: unknown) => next(err),
    );
  };
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

/**
 * Records a signed-in session's last request for the security page's list, at most once a minute (a
 * change makes express-session write the session back; an unchanged one is only touched).
 */
export function lastSeen(resolutionMs: number): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (isFullySignedIn(req)) {
      const now = Date.now();
      if (now - (req.session.lastSeenAt ?? 0) >= resolutionMs) req.session.lastSeenAt = now;
    }
    next();
  };
}
