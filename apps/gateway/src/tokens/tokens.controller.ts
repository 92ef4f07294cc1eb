import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Post,
  Req,
  UseGuards,
} from '@nestjs/common';
import type { Request } from 'express';
import { z } from 'zod';
import type { ApiTokenEntity } from '#common';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { loginSchema } from '../auth/auth.schemas.js';
import { AuthService } from '../auth/auth.service.js';
import { parseOrThrow } from '../http/validation.js';
import { TokensService } from './tokens.service.js';

const createTokenSchema = loginSchema.extend({
  name: z.string().trim().min(1).max(100, 'name must be at most 100 characters').optional(),
});

const view = (t: ApiTokenEntity) => ({
  id: t.id,
  name: t.name,
  createdAt: t.createdAt,
  lastUsedAt: t.lastUsedAt,
});

@Controller('api/v1/tokens')
export class TokensController {
  constructor(
    private readonly auth: AuthService,
    private readonly tokens: TokensService,
  ) {}

  /** Exchanges username + password for a bearer token (throttled like the login form). */
  @Post()
  @HttpCode(201)
  async create(@Req() req: Request, @Body() body: unknown) {
    const input = parseOrThrow(createTokenSchema, body);
    const user = await this.auth.authenticate(input.username, input.password, req.ip ?? 'unknown');
    const { token, entity } = await this.tokens.create(user.id, input.name ?? 'api', req.ip);
    return { token, id: entity.id, name: entity.name, createdAt: entity.createdAt };
  }

  @Get()
  @UseGuards(ApiAuthGuard)
  async list(@Req() req: Request) {
    return { tokens: (await this.tokens.list(req.user!.id)).map(view) };
  }

  @Delete(':id')
  @UseGuards(ApiAuthGuard)
  @HttpCode(204)
  async revoke(
    @Req() req: Request,
    @Param('id', new ParseUUIDPipe({ version: '4' })) id: string,
  ): Promise<void> {
    if (!(await this.tokens.revoke(req.user!.id, id, req.ip))) throw new NotFoundException('No such token.');
  }
}
