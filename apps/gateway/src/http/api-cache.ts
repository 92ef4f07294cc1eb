import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * `Cache-Control: no-store` on every /api/v1 answer (JSON, errors, 304s alike): they carry one user's
 * data, and a shared or browser cache must not keep it. Set before the handler, so a route with its
 * own policy (downloads: `private, no-store`) still decides.
 */
export function apiNoStore(): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.path === '/api/v1' || req.path.startsWith('/api/v1/')) res.setHeader('Cache-Control', 'no-store');
    next();
  };
}
