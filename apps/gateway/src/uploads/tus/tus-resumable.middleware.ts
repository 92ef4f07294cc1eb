import { HttpException, Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { TUS_VERSION } from './tus-headers.js';

/**
 * tus 1.0.0: every request but OPTIONS must carry `Tus-Resumable: 1.0.0` (else 412 with `Tus-Version`,
 * unprocessed), and every response but OPTIONS's carries it. Runs before authentication, so 401s have it.
 */
@Injectable()
export class TusResumableMiddleware implements NestMiddleware {
  use(req: Request, res: Response, next: NextFunction): void {
    if (req.method === 'OPTIONS') {
      next();
      return;
    }
    res.setHeader('Tus-Resumable', TUS_VERSION);
    if (req.headers['tus-resumable'] !== TUS_VERSION) {
      res.setHeader('Tus-Version', TUS_VERSION);
      next(
        new HttpException(`This server speaks tus ${TUS_VERSION}: send Tus-Resumable: ${TUS_VERSION}.`, 412),
      );
      return;
    }
    next();
  }
}
