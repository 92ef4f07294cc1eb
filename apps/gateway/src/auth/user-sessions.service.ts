import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import type { SessionData } from 'express-session';
import type { Redis } from 'ioredis';
import { TESS_CONFIG, type TessConfig } from '#common';
import { EventsGateway } from '../events/events.gateway.js';
import { endedSessionKey, sessionKeyPrefix } from '../http/session.js';
import { REDIS } from '../infra/redis.module.js';

/** The longest user agent kept with a session (the header itself is bounded only by the header limit). */
const MAX_USER_AGENT = 300;

/** One of a user's live sessions, as the security page lists it. */
export interface ActiveSession {
  /**
   * Names the session in forms and URLs without being its id: the id is what the (signed) cookie
   * carries, so it never leaves the server.
   */
  handle: string;
  /** When the user signed in; null for a session made before TESS recorded it. */
  createdAt: Date | null;
  /** The last request, at {@link LAST_SEEN_RESOLUTION_MS} precision; null when unknown. */
  lastSeenAt: Date | null;
  ip: string | null;
  userAgent: string | null;
  /** The session the asking request uses. */
  current: boolean;
}

/** A session's "last seen" time is rewritten at most this often (each write is a session save). */
export const LAST_SEEN_RESOLUTION_MS = 60_000;

/** The handle of a session id (see {@link ActiveSession.handle}). */
export function sessionHandle(sessionId: string): string {
  return createHash('sha256').update(sessionId, 'utf8').digest('base64url').slice(0, 22);
}

/** Who signed in: recorded in the session for the list of sessions. */
function clientOf(req: Request): NonNullable<SessionData['client']> {
  const agent = req.headers['user-agent'];
  return {
    ip: req.ip ?? 'unknown',
    userAgent: typeof agent === 'string' ? agent.slice(0, MAX_USER_AGENT) : '',
  };
}

/** Logs the user into a fresh session (passport regenerates the id, so the pre-login id dies). */
function login(
  req: Request,
  user: Express.User,
  kept: Pick<SessionData, 'authenticatedAt' | 'client'>,
): Promise<void> {
  return new Promise((resolve, reject) => {
    req.login(user, (err) => {
      if (err) return reject(err);
      req.session.authenticatedAt = kept.authenticatedAt;
      req.session.client = kept.client;
      req.session.lastSeenAt = Date.now();
      req.session.save((saveErr) => (saveErr ? reject(saveErr) : resolve()));
    });
  });
}

/**
 * The sessions of each user. connect-redis keys a session by its id only, so ending "every session of
 * a user" (a password change or reset, the security page) needs an index: a Redis set
 * `<prefix>:user-sessions:<user id>` of session ids, added to at sign-in and removed from at logout. A
 * session that ended by itself (idle or absolute timeout) leaves a stale id behind, which costs one DEL
 * of a missing key when the set is used (and is pruned when the sessions are listed); the set's TTL
 * (the longest a session can live) is renewed at every sign-in, so it never outlives its sessions.
 *
 * What the list shows (sign-in time, client address, user agent, last seen) lives in the session
 * itself, so it expires with it. Sessions made before the index existed are not in it: they end by
 * their own timeouts.
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

  private sessionKey(sessionId: string): string {
    return `${sessionKeyPrefix(this.config)}${sessionId}`;
  }

  /** Signs the user into a fresh session and indexes it. */
  async start(req: Request, user: Express.User): Promise<void> {
    await login(req, user, { authenticatedAt: Date.now(), client: clientOf(req) });
    await this.add(user.id, req.sessionID);
  }

  /**
   * Password accepted, second factor (or, with MFA_REQUIRED, its enrolment) to come: a fresh session id
   * (the pre-login one dies) holding only the pending mark, no passport user (see isFullySignedIn). Not
   * indexed: it signs nothing in, and it expires on its own after MFA_PENDING_MS.
   */
  async startPending(req: Request, user: Express.User, enrol = false): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      req.session.regenerate((err) => (err ? reject(err) : resolve())),
    );
    req.session.mfaPending = {
      userId: user.id,
      username: user.username,
      since: Date.now(),
      ...(enrol ? { enrol: true } : {}),
    };
    await new Promise<void>((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
  }

  /**
   * Gives a signed-in request a new session id (OWASP: renew the id when the credentials change),
   * keeping its absolute deadline and client; the old id stops working.
   */
  async renew(req: Request, user: Express.User): Promise<void> {
    const previous = req.sessionID;
    await login(req, user, {
      authenticatedAt: req.session.authenticatedAt ?? Date.now(),
      client: req.session.client,
    });
    this.events.disconnectSession(previous);
    await this.remove(user.id, previous);
    await this.add(user.id, req.sessionID);
  }

  /** Forgets a session that is being destroyed (logout), and marks it ended. */
  async remove(userId: string, sessionId: string): Promise<void> {
    await this.redis
      .multi()
      .srem(this.indexKey(userId), sessionId)
      .set(endedSessionKey(this.config, sessionId), '1', 'PX', this.ttlMs)
      .exec();
  }

  /** The user's indexed session ids (expired ones may still be listed). */
  list(userId: string): Promise<string[]> {
    return this.redis.smembers(this.indexKey(userId));
  }

  /**
   * The user's live sessions, newest sign-in first, `currentId` marked; ids whose session has expired
   * are dropped from the index on the way.
   */
  async describe(userId: string, currentId?: string): Promise<ActiveSession[]> {
    const ids = await this.list(userId);
    if (ids.length === 0) return [];
    const stored = await this.redis.mget(ids.map((id) => this.sessionKey(id)));
    const gone: string[] = [];
    const sessions: ActiveSession[] = [];
    ids.forEach((id, i) => {
      const data = parseSession(stored[i]);
      // A session whose passport user is another one (or none) is not this user's any more.
      if (!data || data.passport?.user !== userId) {
        gone.push(id);
        return;
      }
      sessions.push({
        handle: sessionHandle(id),
        createdAt: typeof data.authenticatedAt === 'number' ? new Date(data.authenticatedAt) : null,
        lastSeenAt: typeof data.lastSeenAt === 'number' ? new Date(data.lastSeenAt) : null,
        ip: data.client?.ip ?? null,
        userAgent: data.client?.userAgent || null,
        current: id === currentId,
      });
    });
    if (gone.length > 0) await this.redis.srem(this.indexKey(userId), ...gone);
    return sessions.sort(
      (a, b) =>
        Number(b.current) - Number(a.current) ||
        (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0),
    );
  }

  /**
   * Ends the user's session named by `handle`, on every replica (see {@link endAll}). Returns false
   * when the user has no such session: another user's handle ends nothing.
   */
  async end(userId: string, handle: string): Promise<boolean> {
    const id = (await this.list(userId)).find((candidate) => sessionHandle(candidate) === handle);
    if (!id) return false;
    await this.endIds(userId, [id]);
    return true;
  }

  /**
   * Ends every session of the user except `keep`, on every replica: the session is deleted from Redis
   * (its next request is anonymous) and its sockets are disconnected. Returns how many were still alive.
   */
  async endAll(userId: string, keep?: string): Promise<number> {
    const ending = (await this.list(userId)).filter((id) => id !== keep);
    return this.endIds(userId, ending);
  }

  private async endIds(userId: string, ending: string[]): Promise<number> {
    if (ending.length === 0) return 0;
    const pipeline = this.redis.pipeline();
    for (const id of ending) pipeline.del(this.sessionKey(id));
    pipeline.srem(this.indexKey(userId), ...ending);
    // The mark outlives anything that could save the session back (see endedSessionKey).
    for (const id of ending) pipeline.set(endedSessionKey(this.config, id), '1', 'PX', this.ttlMs);
    const results = (await pipeline.exec()) ?? [];
    for (const id of ending) this.events.disconnectSession(id);
    return results.slice(0, ending.length).filter(([error, deleted]) => !error && deleted === 1).length;
  }

  private async add(userId: string, sessionId: string): Promise<void> {
    const key = this.indexKey(userId);
    await this.redis.multi().sadd(key, sessionId).pexpire(key, this.ttlMs).exec();
  }
}

type StoredSession = Partial<SessionData> & { passport?: { user?: string } };

/** A session as connect-redis stores it (JSON), or null when missing or unreadable. */
function parseSession(raw: string | null | undefined): StoredSession | null {
  if (!raw) return null;
  try {
    const value: unknown = JSON.parse(raw);
    return value && typeof value === 'object' ? (value as StoredSession) : null;
  } catch {
    return null;
  }
}
