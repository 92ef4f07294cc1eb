import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import { Strategy } from 'passport-http-bearer';
import { TokensService } from './tokens.service.js';

/** `Authorization: Bearer <token>` for /api/v1 (passport-http-bearer). */
@Injectable()
export class BearerStrategy extends PassportStrategy(Strategy, 'bearer') {
  constructor(private readonly tokens: TokensService) {
    super();
  }

  /**
   * passport-http-bearer also reads `access_token` from the query string and the body, where tokens
   * end up in logs, histories and Referer headers. It sees only the Authorization header here.
   */
  override authenticate(req: Request, options?: object): void {
    const headerOnly = { headers: { authorization: req.headers.authorization } };
    super.authenticate(headerOnly as Request, options);
  }

  async validate(token: string): Promise<Express.User | false> {
    return (await this.tokens.authenticate(token)) ?? false;
  }
}
