import type { IncomingMessage, ServerResponse } from 'node:http';
import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Redis } from 'ioredis';
import type { Server, ServerOptions } from 'socket.io';
import { createRedisClient, type TessConfig } from '#common';
import { isFullySignedIn } from '../http/session-state.js';

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** Runs `middleware` only for the handshake request, not for every long-polling request after it. */
function onlyForHandshake(middleware: Middleware): Middleware {
  return (req, res, next) => {
    const isHandshake =
      (req as IncomingMessage & { _query?: Record<string, string> })._query?.sid === undefined;
    if (isHandshake) middleware(req, res, next);
    else next();
  };
}

/**
 * Whether a Socket.IO handshake comes from a page of ours. Browsers send Origin on every WebSocket
 * handshake and cross-origin request, so a present Origin must be on the allowlist. Same-origin GETs (the
 * long-polling transport) carry no Origin; there the browser's Fetch Metadata must say `same-origin`. A
 * request with neither is refused: it is no browser of ours (and a script can set Origin itself).
 */
export function isSameOriginRequest(req: IncomingMessage, allowed: ReadonlySet<string>): boolean {
  const origin = req.headers.origin;
  if (origin !== undefined) return allowed.has(origin);
  return req.headers['sec-fetch-site'] === 'same-origin';
}

/**
 * Socket.IO for the dashboard: same origin only (Origin checked against ALLOWED_ORIGINS before the
 * handshake is accepted), authenticated at the handshake by running the same session and passport
 * middleware as the HTTP app (no session, no socket), and a Redis adapter so room operations such as
 * "disconnect every socket of this session" reach every gateway replica.
 */
export class TessIoAdapter extends IoAdapter {
  private readonly clients: Redis[] = [];

  constructor(
    app: INestApplicationContext,
    private readonly config: TessConfig,
    private readonly sessionMiddlewares: Middleware[],
  ) {
    super(app);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const allowed = new Set(this.config.http.allowedOrigins);
    const merged: Partial<ServerOptions> = {
      ...options,
      path: '/socket.io',
      serveClient: false,
      cors: undefined,
      maxHttpBufferSize: 16 * 1024,
      allowRequest: (req, callback) => {
        const ok = isSameOriginRequest(req, allowed);
        callback(ok ? null : 'Origin not allowed', ok);
      },
    };
    const server: Server = super.createIOServer(port, merged as ServerOptions);
    for (const middleware of this.sessionMiddlewares) server.engine.use(onlyForHandshake(middleware));
    server.engine.use(
      onlyForHandshake((req, res, next) => {
        if (isFullySignedIn(req)) return next();
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ statusCode: 401, error: 'Unauthorized', message: 'Log in first.' }));
      }),
    );
    const pub = createRedisClient(this.config.redis.url, {
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
    });
    const sub = pub.duplicate();
    for (const client of [pub, sub]) {
      client.on('error', () => undefined);
      client.connect().catch(() => undefined);
      this.clients.push(client);
    }
    server.adapter(createAdapter(pub, sub, { key: `${this.config.redis.prefix}:socket.io` }));
    return server;
  }

  override async dispose(): Promise<void> {
    await super.dispose();
    for (const client of this.clients.splice(0)) client.disconnect();
  }
}
