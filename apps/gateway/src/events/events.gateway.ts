import { Inject, Logger, type OnApplicationShutdown } from '@nestjs/common';
import {
  type OnGatewayConnection,
  type OnGatewayInit,
  WebSocketGateway,
  WebSocketServer,
} from '@nestjs/websockets';
import { QueueEvents } from 'bullmq';
import type { Request } from 'express';
import { Redis } from 'ioredis';
import type { Server, Socket } from 'socket.io';
import {
  bullPrefix,
  type ClientToServerEvents,
  type FileCreatedEvent,
  FileRepository,
  type InterServerEvents,
  isJobProgress,
  jobResultOf,
  QUEUE_NAMES,
  type ServerToClientEvents,
  TESS_CONFIG,
  type TessConfig,
  userRoom,
} from '#common';
import { sessionKeyPrefix } from '../http/session.js';
import { sessionUser } from '../http/session-state.js';
import { REDIS } from '../infra/redis.module.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a socket knows of the session it was opened with. */
interface SocketSession {
  sessionId: string;
  /** The absolute timeout: fixed at login, never extended. */
  endsAt: number;
  /** The idle timeout as last read from the session's TTL in Redis (a lower bound: HTTP requests roll it). */
  idleEndsAt: number;
}

type TessServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketSession>;
type TessSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketSession>;

export function sessionRoom(sessionId: string): string {
  return `session:${sessionId}`;
}

/**
 * Relays job events to the owner's sockets. Every gateway replica listens to BullMQ QueueEvents and
 * emits only to its *own* sockets in the owner's room (`server.local`), so each client gets each event
 * once from the replica it is connected to. QueueEvents is best effort; the dashboard reloads state
 * over REST whenever its socket (re)connects. New uploads (`file:created`) are announced by the replica
 * that accepted them: to its own sockets, and to the other replicas by a server-side emit, each of which
 * relays it to its own sockets the same way.
 *
 * A socket lives no longer than its session: every `checkEveryMs` each replica reads the TTL of its
 * sockets' sessions (one pipelined PTTL per session) and disconnects those whose session is gone
 * (idle expiry, logout, absolute-timeout regeneration) or past the absolute timeout; before relaying
 * an event it re-checks the target sockets whose known deadline has passed. Socket traffic never
 * touches the session, so it neither keeps it alive nor extends the absolute timeout.
 */
@WebSocketGateway()
export class EventsGateway implements OnGatewayInit, OnGatewayConnection, OnApplicationShutdown {
  @WebSocketServer() server!: TessServer;
  private readonly logger = new Logger(EventsGateway.name);
  private queueEvents?: QueueEvents;
  /** The follower queue's events: a follower that stored a file sends its `job:completed` from there. */
  private followEvents?: QueueEvents;
  private connection?: Redis;
  private followConnection?: Redis;
  /** fileId -> ownerId, so progress events cost no query after the first. */
  private readonly owners = new Map<string, string>();
  private sweeper?: NodeJS.Timeout;
  /** A few seconds in production; a quarter of the shortest timeout when timeouts are short (tests). */
  private readonly checkEveryMs: number;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    @Inject(REDIS) private readonly redis: Redis,
    private readonly files: FileRepository,
  ) {
    const shortest = Math.min(config.session.idleTimeoutMs, config.session.absoluteTimeoutMs);
    this.checkEveryMs = Math.min(5_000, Math.max(250, Math.floor(shortest / 4)));
  }

  afterInit(): void {
    this.sweeper = setInterval(
      () => void this.expire([...this.server.sockets.sockets.values()]),
      this.checkEveryMs,
    );
    this.sweeper.unref();
    this.connection = new Redis(this.config.redis.url, { maxRetriesPerRequest: null, lazyConnect: true });
    this.connection.on('error', () => undefined);
    this.queueEvents = new QueueEvents(QUEUE_NAMES.crypto, {
      connection: this.connection,
      prefix: bullPrefix(this.config.redis.prefix),
    });
    this.server.on('files:created', (ownerId, files) => {
      if (UUID.test(ownerId) && Array.isArray(files)) this.relayCreated(ownerId, files);
    });
    this.queueEvents.on('error', (error) => this.logger.warn(`QueueEvents: ${error.message}`));
    this.queueEvents.on('progress', ({ jobId, data }) => {
      if (!isJobProgress(data)) return;
      const { ownerId, ...progress } = data;
      void this.emit(jobId, ownerId, 'job:progress', { jobId, fileId: jobId, ...progress });
    });
    this.queueEvents.on('completed', ({ jobId, returnvalue }) => this.relayCompleted(jobId, returnvalue));
    this.queueEvents.on('failed', ({ jobId, failedReason }) => {
      void this.emit(jobId, undefined, 'job:failed', { jobId, fileId: jobId, error: failedReason }).finally(
        () => this.owners.delete(jobId),
      );
    });
    // A follower (docs/security.md item 40) commits the file itself; the encrypt-file job then only finds
    // it stored (a skipped result, not relayed), so the follower's result is the one to relay.
    this.followConnection = new Redis(this.config.redis.url, {
      maxRetriesPerRequest: null,
      lazyConnect: true,
    });
    this.followConnection.on('error', () => undefined);
    this.followEvents = new QueueEvents(QUEUE_NAMES.follow, {
      connection: this.followConnection,
      prefix: bullPrefix(this.config.redis.prefix),
    });
    this.followEvents.on('error', (error) => this.logger.warn(`QueueEvents: ${error.message}`));
    this.followEvents.on('completed', ({ jobId, returnvalue }) => this.relayCompleted(jobId, returnvalue));
  }

  /** `job:completed` for a stored file (an encrypt-file or follow-file result that is not a skip). */
  private relayCompleted(jobId: string, returnvalue: unknown): void {
    // Only encrypt-file results are relayed (a delete-user job's id is no file id, and its result no
    // encrypt-file result).
    const result = jobResultOf('encrypt-file', returnvalue);
    if (!result || result.skipped) return;
    void this.emit(jobId, result.ownerId, 'job:completed', {
      jobId,
      fileId: jobId,
      sha1: result.sha1,
      sha256: result.sha256,
      size: result.size,
      // A new version's job runs on an upload row of its own, now folded into the file it names.
      ...(result.fileId && result.fileId !== jobId
        ? { versionOf: result.fileId, ...(result.version ? { version: result.version } : {}) }
        : {}),
    }).finally(() => this.owners.delete(jobId));
  }

  /** Tells every open dashboard of the owner, on every replica, about files just accepted. */
  filesCreated(ownerId: string, files: FileCreatedEvent[]): void {
    if (!this.server || files.length === 0) return;
    this.relayCreated(ownerId, files);
    try {
      this.server.serverSideEmit('files:created', ownerId, files);
    } catch (error) {
      this.logger.warn(`Could not announce new files to the other replicas: ${(error as Error).message}`);
    }
  }

  private relayCreated(ownerId: string, files: FileCreatedEvent[]): void {
    for (const file of files) void this.emit(file.fileId, ownerId, 'file:created', file);
  }

  handleConnection(socket: TessSocket): void {
    const req = socket.request as unknown as Request;
    const user = sessionUser(req);
    if (!user) {
      socket.disconnect(true);
      return;
    }
    const now = Date.now();
    socket.data = {
      sessionId: req.sessionID,
      endsAt: (req.session.authenticatedAt ?? now) + this.config.session.absoluteTimeoutMs,
      idleEndsAt: req.session.cookie.expires?.getTime() ?? now + this.config.session.idleTimeoutMs,
    };
    void socket.join([userRoom(user.id), sessionRoom(req.sessionID)]);
  }

  /**
   * Disconnects the sockets whose session has ended. Past the absolute timeout needs no lookup; for
   * the rest the session's TTL in Redis decides. When Redis cannot answer, the last known idle
   * deadline decides.
   */
  private async expire(sockets: TessSocket[]): Promise<void> {
    const now = Date.now();
    const open = sockets.filter((socket) => {
      if (socket.data.endsAt > now) return true;
      socket.disconnect(true);
      return false;
    });
    if (open.length === 0) return;
    const ids = [...new Set(open.map((socket) => socket.data.sessionId))];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.pttl(`${sessionKeyPrefix(this.config)}${id}`);
    const ttls = new Map<string, number>();
    try {
      for (const [i, [error, ttl]] of ((await pipeline.exec()) ?? []).entries()) {
        if (!error && typeof ttl === 'number') ttls.set(ids[i] as string, ttl);
      }
    } catch (error) {
      this.logger.warn(`Could not check socket sessions: ${(error as Error).message}`);
    }
    for (const socket of open) {
      const ttl = ttls.get(socket.data.sessionId);
      // -2: no such key; -1: a key without expiry (never written so by connect-redis; kept).
      if (ttl !== undefined && ttl !== -2) socket.data.idleEndsAt = ttl === -1 ? Infinity : now + ttl;
      if (ttl === -2 || socket.data.idleEndsAt <= now) socket.disconnect(true);
    }
  }

  /** The sockets of `room` on this replica whose known deadline has passed. */
  private due(room: string): TessSocket[] {
    const now = Date.now();
    const ids = this.server.sockets.adapter.rooms.get(room) ?? new Set<string>();
    return [...ids]
      .map((id) => this.server.sockets.sockets.get(id))
      .filter((s): s is TessSocket => s !== undefined && Math.min(s.data.endsAt, s.data.idleEndsAt) <= now);
  }

  /** Disconnects every socket opened with this session, on every replica (logout). */
  disconnectSession(sessionId: string): void {
    this.server?.in(sessionRoom(sessionId)).disconnectSockets(true);
  }

  /** Disconnects every socket of the user, on every replica (an admin disabled the account). */
  disconnectUser(userId: string): void {
    this.server?.in(userRoom(userId)).disconnectSockets(true);
  }

  private async ownerOf(fileId: string, named: string | undefined): Promise<string | undefined> {
    // Job ids are file ids; anything else (a hand-made job) has no owner to tell.
    if (!UUID.test(fileId)) return undefined;
    // Workers name the owner in progress and completion events; only older events and failures need a query.
    if (named && UUID.test(named)) return named;
    const cached = this.owners.get(fileId);
    if (cached) return cached;
    const file = await this.files.findById(fileId);
    if (!file) return undefined;
    if (this.owners.size > 10_000) this.owners.clear();
    this.owners.set(fileId, file.ownerId);
    return file.ownerId;
  }

  private async emit<E extends keyof ServerToClientEvents>(
    fileId: string,
    ownerId: string | undefined,
    event: E,
    ...args: Parameters<ServerToClientEvents[E]>
  ): Promise<void> {
    // Nobody connected to this replica: nothing to route (and no query to make).
    if (this.server.sockets.sockets.size === 0) return;
    try {
      const owner = await this.ownerOf(fileId, ownerId);
      if (!owner) return;
      const due = this.due(userRoom(owner));
      if (due.length) await this.expire(due);
      this.server.local.to(userRoom(owner)).emit(event, ...args);
    } catch (error) {
      this.logger.warn(`Could not relay ${event} for ${fileId}: ${(error as Error).message}`);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.sweeper);
    await this.queueEvents?.close().catch(() => undefined);
    await this.followEvents?.close().catch(() => undefined);
    this.connection?.disconnect();
    this.followConnection?.disconnect();
  }
}
