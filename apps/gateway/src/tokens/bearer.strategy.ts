import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-http-bearer';
import { TokensService } from './tokens.service.js';

/** `Authorization: Bearer <token>` for /api/v1 (passport-http-bearer). */
@Injectable()
export class BearerStrategy extends PassportStrategy(Strategy, 'bearer') {
  constructor(private readonly tokens: TokensService) {
    super();
  }

  async validate(token: string): Promise<Express.User | false> {
    return (await this.tokens.authenticate(token)) ?? false;
  }
}
