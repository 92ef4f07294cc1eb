import {
  Body,
  Controller,
  HttpStatus,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Post,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { durationSchema } from '#common';
import { PageAuthGuard } from '../auth/page-auth.guard.js';
import { TokensService } from '../tokens/tokens.service.js';
import { field } from './security.controller.js';
import { SecurityPage } from './security-page.js';

/**
 * API tokens on the security page (docs/security.md item 30c): create one (named, with an expiry,
 * shown once), revoke one. The session is fully signed in (its second factor passed), so creating a
 * token here asks for nothing more: this is also how an account whose only factor is a passkey gets a
 * token, since a CLI cannot do WebAuthn.
 */
@ApiExcludeController()
@Controller('account/security/tokens')
@UseGuards(PageAuthGuard)
export class SecurityTokensController {
  constructor(
    private readonly tokens: TokensService,
    private readonly page: SecurityPage,
  ) {}

  @Post()
  async create(@Req() req: Request, @Res() res: Response, @Body() body: unknown): Promise<void> {
    const name = field(body, 'tokenName').trim();
    const lifetime = field(body, 'tokenExpiresIn');
    const values = { tokenName: name, tokenExpiresIn: lifetime };
    if (name.length === 0 || name.length > 100)
      return this.page.render(req, res, HttpStatus.BAD_REQUEST, {
        values,
        errors: { tokenName: 'Name the token (at most 100 characters), for example the machine it is for.' },
      });
    const offered = this.page.lifetimes().some((choice) => choice.value === lifetime);
    const parsed = lifetime === 'never' ? undefined : durationSchema.safeParse(lifetime);
    if (!offered || (parsed && !parsed.success))
      return this.page.render(req, res, HttpStatus.BAD_REQUEST, {
        values,
        errors: { tokenExpiresIn: 'Choose one of the offered expiries.' },
      });
    const { token, entity } = await this.tokens.create(req.user!.id, name, req.ip, parsed?.data);
    req.session.flash = { kind: 'success', text: `Token "${name}" created.` };
    // Rendered, not redirected: the token is shown this once and only its hash is stored.
    return this.page.render(req, res, HttpStatus.CREATED, {
      newToken: { name: entity.name, token, expiresAt: entity.expiresAt },
    });
  }

  @Post(':id/revoke')
  async revoke(
    @Req() req: Request,
    @Res() res: Response,
    @Param('id', new ParseUUIDPipe({ version: '4' })) id: string,
  ): Promise<void> {
    if (!(await this.tokens.revoke(req.user!.id, id, req.ip))) throw new NotFoundException('No such token.');
    req.session.flash = { kind: 'success', text: 'Token revoked: it no longer works.' };
    res.redirect(303, '/account/security');
  }
}
