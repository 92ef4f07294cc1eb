import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { sendError } from './http-exception.filter.js';

const PARSE_ERRORS: Record<string, [number, string]> = {
  'entity.too.large': [413, 'The request body is too large (limit 64 KiB for JSON and forms).'],
  'entity.parse.failed': [400, 'The request body is not valid JSON.'],
  'encoding.unsupported': [415, 'The request body uses an unsupported character encoding.'],
  'parameters.too.many': [413, 'The form has too many fields.'],
};

/**
 * Small, bounded JSON and form parsers (file uploads are streamed elsewhere and never parsed here).
 * Their errors are answered right here in the usual error shape: Nest's exception filters do not
 * see errors raised by plain Express middleware.
 */
export function bodyParsers(): RequestHandler[] {
  const parsers = [
    express.json({ limit: '64kb' }),
    express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 50 }),
  ];
  return parsers.map((parser) => (req: Request, res: Response, next: NextFunction) => {
    parser(req, res, (err?: unknown) => {
      if (!err) return next();
      const [status, message] = PARSE_ERRORS[(err as { type?: string }).type ?? ''] ?? [
        400,
        'Malformed request body.',
      ];
      sendError(req, res, status, message);
    });
  });
}
