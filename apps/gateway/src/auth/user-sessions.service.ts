import { Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import type { Redis } from 'ioredis';
import { TESS_CONFIG, type TessConfig } from '#common';
import { EventsGateway } from '../events/events.gateway.js';
import { sessionKeyPrefix } from '../http/session.js';
import { REDIS } from '../infra/redis.module.js';

/** Logs the user into a fresh session (passport regenerates the id, so the pre-login id dies). */
function login(req: Request, user: Express.User, authenticatedAt: number): Promise<void> {
  return new Promise((resolve, reject) => {
    req.login(user, (err) => {
      if (err) return reject(err);
      req.session.authenticatedAt = authenticatedAt;
      req.session.save((saveErr) => (saveErr ? reject(saveErr) : resolve()));
    });
  });
}

/**
 * The sessions of each user. connect-redis keys a session by its id only, so ending "every session of
 * a user" (a password change or reset) needs an index: a Redis set `<prefix>:user-sessions:<user id>`
 * of session ids, added to at sign-in and removed from at logout. A session that ended by itself (idle
 * or absolute timeout) leaves a stale id behind, which costs one DEL of a missing key when the set is
 * used; the set's TTL (the longest a session can live) is renewed at every sign-in, so it never
 * outlives its sessions.
 */
@Injectable()
export class UserSessionsService {
  private readonly ttlMs: number;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly events: EventsGateway,
  ) {
    this.ttlMs = config.session.absoluteTimeoutMs + config.session.idleTimeoutMs;
  }

  private indexKey(userId: string): string {
    return `${this.config.redis.prefix}:user-sessions:${userId}`;
  }

  /** Signs the user into a fresh session and indexes it. */
  async start(req: Request, user: Express.User): Promise<void> {
    await login(req, user, Date.now());
    await this.add(user.id, req.sessionID);
  }

  /**
   * Password accepted, second factor to come: a fresh session id (the pre-login one dies) holding only
   * the pending mark, no passport user (see isFullySignedIn). Not indexed: it signs nothing in, and it
   * expires on its own after MFA_PENDING_MS.
   */
  async startPending(req: Request, user: Express.User): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      req.session.regenerate((err) => (err ? reject(err) : resolve())),
    );
    req.session.mfaPending = { userId: user.id, username: user.username, since: Date.now() };
    await new Promise<void>((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
  }

  /**
   * Gives a signed-in request a new session id (OWASP: renew the id when the credentials change),
   * keeping its absolute deadline; the old id stops working.
   */
  async renew(req: Request, user: Express.User): Promise<void> {
    const previous = req.sessionID;
    await login(req, user, req.session.authenticatedAt ?? Date.now());
    this.events.disconnectSession(previous);
    await this.redis.srem(this.indexKey(user.id), previous);
    await this.add(user.id, req.sessionID);
  }

  /** Forgets a session that is being destroyed (logout). */
  async remove(userId: string, sessionId: string): Promise<void> {
    await this.redis.srem(this.indexKey(userId), sessionId);
  }

  /** The user's indexed session ids (expired ones may still be listed). */
  list(userId: string): Promise<string[]> {
    return this.redis.smembers(this.indexKey(userId));
  }

  /**
   * Ends every session of the user except `keep`, on every replica: the session is deleted from Redis
   * (its next request is anonymous) and its sockets are disconnected. Returns how many were still alive.
   */
  async endAll(userId: string, keep?: string): Promise<number> {
    const key = this.indexKey(userId);
    const ending = (await this.redis.smembers(key)).filter((id) => id !== keep);
    if (ending.length === 0) return 0;
    const pipeline = this.redis.pipeline();
    for (const id of ending) pipeline.del(`${sessionKeyPrefix(this.config)}${id}`);
    pipeline.srem(key, ...ending);
    const results = (await pipeline.exec()) ?? [];
    for (const id of ending) this.events.disconnectSession(id);
    return results.slice(0, ending.length).filter(([error, deleted]) => !error && deleted === 1).length;
  }

  private async add(userId: string, sessionId: string): Promise<void> {
    const key = this.indexKey(userId);
    await this.redis.multi().sadd(key, sessionId).pexpire(key, this.ttlMs).exec();
  }
}
