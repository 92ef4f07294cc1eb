import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { TessMetrics } from '#common';

const REQUEST_ID = /^[A-Za-z0-9._-]{8,80}$/;
const QUIET = /^\/(healthz|readyz|metrics|assets\/|static\/)/;

/**
 * One JSON log line per request with a request id (the caller's X-Request-Id when well-formed, else a
 * new UUID, echoed back), the user id when known, status and latency; never headers with credentials.
 * Also feeds the HTTP latency histogram, labelled by route pattern (not raw URL) to bound cardinality.
 */
export function requestLogging(logger: Logger, metrics: TessMetrics): RequestHandler[] {
  const http = pinoHttp({
    logger,
    genReqId: (req, res) => {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    autoLogging: { ignore: (req) => QUIET.test(req.url ?? '') },
    customLogLevel: (_req, res, error) =>
      error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
    customProps: (req) => ({ userId: (req as Request).user?.id }),
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
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
