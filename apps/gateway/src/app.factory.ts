import type { Server } from 'node:http';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import type { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { createLogger, migrate, nestLogger, type TessConfig, TessMetrics, UserRepository } from '#common';
import { AppModule } from './app.module.js';
import { createSessionPassport } from './auth/session-passport.js';
import { LAST_SEEN_RESOLUTION_MS } from './auth/user-sessions.service.js';
import { TessIoAdapter } from './events/tess-io.adapter.js';
import { apiNoStore } from './http/api-cache.js';
import { bodyParsers } from './http/body-parsers.js';
import { setupOpenApi } from './http/openapi.js';
import { gatewayPaths } from './http/paths.js';
import { requestLogging } from './http/request-logging.js';
import { requestTarget } from './http/request-target.js';
import { hashWorkerPolicy, securityHeaders } from './http/security.js';
import {
  absoluteTimeout,
  endedSessions,
  lastSeen,
  sessionMiddleware,
  unlessBearerApi,
} from './http/session.js';
import { configureViews } from './http/views.js';
import { REDIS } from './infra/redis.module.js';

/**
 * Builds the gateway: the Nest app with its middleware in a deliberate order (headers, static assets,
 * bounded body parsers, sessions, passport), views, and migrations applied under an advisory lock.
 * Used by main.ts and by the integration tests, so tests exercise exactly what production runs.
 */
export async function createGatewayApp(config: TessConfig): Promise<NestExpressApplication> {
  const logger = createLogger(config, 'gateway');
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot(config, logger),
    new ExpressAdapter(),
    {
      bodyParser: false,
      abortOnError: false,
      logger: nestLogger(logger),
    },
  );
  try {
    if (config.database.migrateOnStart) {
      const applied = await migrate(app.get(DataSource));
      if (applied.length) new Logger('Migrations').log(`Applied ${applied.join(', ')}`);
    }
    app.set('trust proxy', config.http.trustProxy);
    // Node cuts any request still arriving after 5 minutes (server.requestTimeout): a 500 MiB upload
    // over a 10 Mbit/s link needs 7. TESS has no cap on a whole request; it closes a connection that
    // stays silent for HTTP_IDLE_TIMEOUT instead (headersTimeout still bounds slow request headers).
    const server = app.getHttpServer() as Server;
    server.requestTimeout = 0;
    server.setTimeout(config.http.idleTimeoutMs);
    app.disable('x-powered-by');
    for (const middleware of requestLogging(config, logger, app.get(TessMetrics))) app.use(middleware);
    app.use(securityHeaders(config));
    app.use(hashWorkerPolicy());
    app.use(requestTarget());
    app.use(apiNoStore());
    const assets = { maxAge: '7d', index: false, fallthrough: true } as const;
    app.useStaticAssets(gatewayPaths.bootstrap, { ...assets, prefix: '/assets/bootstrap/' });
    app.useStaticAssets(gatewayPaths.bootstrapIcons, { ...assets, prefix: '/assets/bootstrap-icons/' });
    app.useStaticAssets(gatewayPaths.socketIoClient, { ...assets, prefix: '/assets/socket.io/' });
    app.useStaticAssets(gatewayPaths.tusClient, { ...assets, prefix: '/assets/tus-js-client/' });
    app.useStaticAssets(gatewayPaths.hashWasm, { ...assets, prefix: '/assets/hash-wasm/' });
    app.useStaticAssets(gatewayPaths.swaggerUi, { ...assets, prefix: '/assets/swagger-ui/' });
    app.useStaticAssets(gatewayPaths.simpleWebAuthn, { ...assets, prefix: '/assets/simplewebauthn/' });
    app.useStaticAssets(gatewayPaths.public, { ...assets, maxAge: '1h', prefix: '/static/' });
    app.use(bodyParsers());
    const passport = createSessionPassport(app.get(UserRepository));
    // One chain for HTTP requests and Socket.IO handshakes alike.
    const sessionChain = [
      sessionMiddleware(config, app.get<Redis>(REDIS)),
      absoluteTimeout(config),
      passport.initialize(),
      passport.session(),
      endedSessions(config, app.get<Redis>(REDIS)),
    ];
    for (const middleware of sessionChain) app.use(unlessBearerApi(middleware));
    // HTTP only: a socket handshake has no response to save the session with.
    app.use(unlessBearerApi(lastSeen(LAST_SEEN_RESOLUTION_MS)));
    app.useWebSocketAdapter(new TessIoAdapter(app, config, sessionChain as never[]));
    await configureViews(app);
    setupOpenApi(app);
    app.enableShutdownHooks();
    await app.init();
    return app;
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
}
