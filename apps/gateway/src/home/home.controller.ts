import { Controller, Get, Req, Res, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { FileRepository } from '#common';
import { PageAuthGuard } from '../auth/page-auth.guard.js';
import { csrfToken } from '../http/csrf.js';
import { TokensService } from '../tokens/tokens.service.js';

@ApiExcludeController()
@Controller()
@UseGuards(PageAuthGuard)
export class HomeController {
  constructor(
    private readonly files: FileRepository,
    private readonly tokens: TokensService,
  ) {}

  @Get('home')
  async home(@Req() req: Request, @Res() res: Response): Promise<void> {
    const user = req.user!;
    const [page, tokens] = await Promise.all([
      this.files.listForOwner(user.id, 50),
      this.tokens.list(user.id),
    ]);
    const flash = req.session.flash;
    if (flash) delete req.session.flash;
    res.render('pages/home', {
      title: 'My files',
      user,
      flash,
      csrfToken: csrfToken(req),
      files: page.items,
      hasFiles: page.items.length > 0,
      tokens,
    });
  }
}
