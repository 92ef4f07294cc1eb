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
  FileRepository,
  isJobProgress,
  jobResultOf,
  QUEUE_NAMES,
  type ServerToClientEvents,
  TESS_CONFIG,
  type TessConfig,
  userRoom,
} from '#common';
import { sessionUser } from '../http/session-state.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type TessServer = Server<ClientToServerEvents, ServerToClientEvents>;

export function sessionRoom(sessionId: string): string {
  return `session:${sessionId}`;
}

/**
 * Relays job events to the owner's sockets. Every gateway replica listens to BullMQ QueueEvents and
 * emits only to its *own* sockets in the owner's room (`server.local`), so each client gets each event
 * once from the replica it is connected to. QueueEvents is best effort; the dashboard reloads state
 * over REST whenever its socket (re)connects.
 */
@WebSocketGateway()
export class EventsGateway implements OnGatewayInit, OnGatewayConnection, OnApplicationShutdown {
  @WebSocketServer() server!: TessServer;
  private readonly logger = new Logger(EventsGateway.name);
  private queueEvents?: QueueEvents;
  private connection?: Redis;
  /** fileId -> ownerId, so progress events cost no query after the first. */
  private readonly owners = new Map<string, string>();

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
  ) {}

  afterInit(): void {
    this.connection = new Redis(this.config.redis.url, { maxRetriesPerRequest: null, lazyConnect: true });
    this.connection.on('error', () => undefined);
    this.queueEvents = new QueueEvents(QUEUE_NAMES.crypto, {
      connection: this.connection,
      prefix: bullPrefix(this.config.redis.prefix),
    });
    this.queueEvents.on('error', (error) => this.logger.warn(`QueueEvents: ${error.message}`));
    this.queueEvents.on('progress', ({ jobId, data }) => {
      if (!isJobProgress(data)) return;
      const { ownerId, ...progress } = data;
      void this.emit(jobId, ownerId, 'job:progress', { jobId, fileId: jobId, ...progress });
    });
    this.queueEvents.on('completed', ({ jobId, returnvalue }) => {
      // Every job on this queue is an encrypt-file job today; anything else is not relayed.
      const result = jobResultOf('encrypt-file', returnvalue);
      if (!result || result.skipped) return;
      void this.emit(jobId, result.ownerId, 'job:completed', {
        jobId,
        fileId: jobId,
        sha1: result.sha1,
        sha256: result.sha256,
        size: result.size,
      }).finally(() => this.owners.delete(jobId));
    });
    this.queueEvents.on('failed', ({ jobId, failedReason }) => {
      void this.emit(jobId, undefined, 'job:failed', { jobId, fileId: jobId, error: failedReason }).finally(
        () => this.owners.delete(jobId),
      );
    });
  }

  handleConnection(socket: Socket): void {
    const req = socket.request as unknown as Request;
    const user = sessionUser(req);
    if (!user) {
      socket.disconnect(true);
      return;
    }
    void socket.join([userRoom(user.id), sessionRoom(req.sessionID)]);
  }

  /** Disconnects every socket opened with this session, on every replica (logout). */
  disconnectSession(sessionId: string): void {
    this.server?.in(sessionRoom(sessionId)).disconnectSockets(true);
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
      if (owner) this.server.local.to(userRoom(owner)).emit(event, ...args);
    } catch (error) {
      this.logger.warn(`Could not relay ${event} for ${fileId}: ${(error as Error).message}`);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queueEvents?.close().catch(() => undefined);
    this.connection?.disconnect();
  }
}
