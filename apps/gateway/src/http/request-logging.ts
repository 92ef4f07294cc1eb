import { randomUUID } from 'node:crypto';
import type { DynamicModule } from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { LoggerModule } from 'nestjs-pino';
import type { Level, Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { prettyLogs, redactRequestUrl, type TessConfig, type TessMetrics } from '#common';

const REQUEST_ID = /^[A-Za-z0-9._-]{8,80}$/;
const QUIET = /^\/(healthz|readyz|metrics|assets\/|static\/)/;

/** On a terminal every request line goes one level down: successes are hidden at `info`. */
const QUIETER: Record<Level, Level> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'info',
  info: 'debug',
  debug: 'trace',
  trace: 'trace',
};

/**
 * One log line per request with a request id (the caller's X-Request-Id when well-formed, else a
 * new UUID, echoed back), the user id when known, status and latency; never headers with credentials
 * and never the values of credential-like query parameters (redactRequestUrl). Mounted first, before
 * static assets, body parsers and sessions, so every response has an id and a line.
 * Also feeds the HTTP latency histogram, labelled by route pattern (not raw URL) to bound cardinality.
 */
export function requestLogging(
  config: Pick<TessConfig, 'logFormat'>,
  logger: Logger,
  metrics: TessMetrics,
): RequestHandler[] {
  const quieter = prettyLogs(config);
  const http = pinoHttp({
    logger,
    quietReqLogger: true,
    genReqId: (req, res) => {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    autoLogging: { ignore: (req) => QUIET.test(req.url ?? '') },
    customLogLevel: (_req, res, error) => {
      const level = error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info';
      return quieter ? QUIETER[level] : level;
    },
    customSuccessMessage: (req, res, ms) =>
      `${req.method} ${redactRequestUrl((req as Request).originalUrl ?? req.url ?? '')} ${res.statusCode} ${ms} ms`,
    customErrorMessage: (req, res, error) =>
      `${req.method} ${redactRequestUrl((req as Request).originalUrl ?? req.url ?? '')} ${res.statusCode} ${error.message}`,
    customProps: (req) => ({ userId: (req as Request).user?.id }),
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({
        id: req.id,
        method: req.method,
        url: redactRequestUrl(req.url),
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
  const timing = (req: Request, res: Response, next: NextFunction) => {
    const end = metrics.httpDuration.startTimer({ method: req.method });
    res.on('finish', () => {
      const route =
        (req.route as { path?: string } | undefined)?.path ??
        (QUIET.test(req.path) ? req.path.split('/')[1] : 'unmatched');
      end({ route: String(route), status: String(res.statusCode) });
    });
    next();
  };
  return [http, timing];
}

/**
 * nestjs-pino for the gateway: inside Nest's request pipeline (guards, controllers, filters) Nest's
 * Logger writes through the request's child logger that `requestLogging` made (`useExisting`), so
 * every line carries `reqId`; outside requests it writes through `logger`. Bound in Nest's pipeline
 * rather than first: the body parsers resume from stream events, outside an earlier async context.
 */
export function requestLoggerModule(logger: Logger): DynamicModule {
  return LoggerModule.forRoot({ pinoHttp: { logger }, useExisting: true });
}
