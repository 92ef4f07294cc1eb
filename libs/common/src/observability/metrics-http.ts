import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TessMetrics } from './metrics.js';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Whether an `Authorization` header carries `Bearer <token>`. Always true without a configured token.
 * Both sides are hashed first so the comparison takes the same time whatever the lengths.
 */
export function metricsAuthorized(authorization: string | undefined, token: string | null): boolean {
  if (token === null) return true;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  const equal = timingSafeEqual(digest(match?.[1] ?? ''), digest(token));
  return equal && match !== null;
}

function sendJson(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/**
 * Answers a `/metrics` scrape, the same way on every listener (gateway port, METRICS_PORT, the
 * worker's health port): 401 without the METRICS_TOKEN when one is configured, else the exposition.
 */
export async function respondWithMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  metrics: TessMetrics,
  token: string | null,
): Promise<void> {
  if (!metricsAuthorized(req.headers.authorization, token)) {
    sendJson(
      res,
      401,
      {
        statusCode: 401,
        error: 'Unauthorized',
        message: 'Metrics need Authorization: Bearer <METRICS_TOKEN>.',
      },
      { 'WWW-Authenticate': 'Bearer realm="metrics"' },
    );
    return;
  }
  try {
    const text = await metrics.registry.metrics();
    res.writeHead(200, { 'Content-Type': metrics.registry.contentType, 'Cache-Control': 'no-store' });
    res.end(text);
  } catch {
    sendJson(res, 500, {
      statusCode: 500,
      error: 'Internal Server Error',
      message: 'Metrics collection failed.',
    });
  }
}
