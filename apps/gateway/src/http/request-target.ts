import type { NextFunction, Request, RequestHandler, Response } from 'express';

const ALLOW = 'GET, HEAD, POST, DELETE, OPTIONS';

/**
 * Answers request targets that are not a path before anything else sees them: express-session skips
 * a target outside its cookie path, and passport's session step then fails with a 500 ("Login
 * sessions require session support"). `OPTIONS *` (RFC 9110 9.3.7, a question about the server) gets
 * 204 with Allow; any other asterisk-form or path-less target is a 400. Absolute-form
 * (`http://host/path`) has a path and continues.
 */
export function requestTarget(): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.url.startsWith('/') || /^https?:\/\/[^/?#]*\//i.test(req.url)) return next();
    if (req.url === '*' && req.method === 'OPTIONS') {
      res.setHeader('Allow', ALLOW);
      res.status(204).end();
      return;
    }
    res.status(400).json({
      statusCode: 400,
      error: 'Bad Request',
      message: 'The request target must be a path such as /api/v1/files.',
    });
  };
}
