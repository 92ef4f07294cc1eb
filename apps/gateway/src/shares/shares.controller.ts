import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpException,
  Inject,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { durationSchema, TESS_CONFIG, type TessConfig } from '#common';
import { CurrentPrincipal } from '../access/principal.decorator.js';
import type { UserPrincipal } from '../access/principal.js';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { passwordProblem } from '../auth/password.service.js';
import { ApiAuth, ApiBodyFrom, ApiErrors, ApiQueryFrom } from '../http/openapi.js';
import { pageQuerySchema, parseOrThrow } from '../http/validation.js';
import { ShareCreatedDto, ShareListDto, SharePageDto } from './shares.dto.js';
import { ShareExpiryError, SharesService, shareView } from './shares.service.js';

const MIN_EXPIRES_IN_MS = 3_600_000;

export const createShareSchema = z
  .object({
    expiresIn: z
      .string({ message: 'must be a duration such as 1h, 7d or 30d' })
      .pipe(durationSchema)
      .pipe(z.number().min(MIN_EXPIRES_IN_MS, 'must be at least 1h'))
      .optional()
      .meta({ description: 'How long the link lasts: 1h to SHARE_MAX_EXPIRY (default 30d); default 7d' }),
    expiresAt: z.iso
      .datetime({ offset: true, message: 'must be an ISO 8601 date-time such as 2026-12-31T12:00:00Z' })
      .optional()
      .meta({ description: 'When the link stops working (instead of expiresIn)' }),
    maxDownloads: z
      .number({ message: 'must be a whole number from 1 to 1000, or null' })
      .int('must be a whole number from 1 to 1000, or null')
      .min(1, 'must be a whole number from 1 to 1000, or null')
      .max(1000, 'must be a whole number from 1 to 1000, or null')
      .nullable()
      .optional()
      .meta({ description: 'Completed downloads allowed; null or absent: unlimited' }),
    password: z
      .string({ message: 'must be a string' })
      .optional()
      .meta({ description: 'Asked for on the link page (8-256 characters, not a common one)' }),
    note: z
      .string({ message: 'must be a string' })
      .trim()
      .max(200, 'must be at most 200 characters')
      .optional()
      .meta({ description: 'Your own note (shown only to you)' }),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.expiresIn !== undefined && v.expiresAt !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'give expiresIn or expiresAt, not both' });
    }
    const problem = v.password === undefined ? null : passwordProblem(v.password);
    if (problem) ctx.addIssue({ code: 'custom', path: ['password'], message: problem });
  });

const uuid = (what: string) =>
  new ParseUUIDPipe({ version: '4', exceptionFactory: () => new HttpException(`No such ${what}.`, 404) });

@ApiTags('shares')
@ApiAuth()
@Controller('api/v1')
@UseGuards(ApiAuthGuard)
export class SharesController {
  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly shares: SharesService,
  ) {}

  /** Links are absolute: PUBLIC_URL when set, else the origin the owner reached this gateway at. */
  private linkBase(req: Request): string {
    return this.config.shares.baseUrl ?? `${req.protocol}://${req.host}`;
  }

  @Post('files/:id/shares')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Create a share link to one of your stored files (the link is shown once)',
    operationId: 'createShare',
  })
  @ApiBodyFrom('CreateShareRequest', createShareSchema)
  @ApiResponse({ status: 201, type: ShareCreatedDto })
  @ApiErrors(
    [400, 'Malformed body, a weak password, or an expiry outside 1h..SHARE_MAX_EXPIRY'],
    [404, 'No such file of yours'],
    [409, 'The file is not stored'],
  )
  async create(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Param('id', uuid('file')) id: string,
    @Body() body: unknown,
  ) {
    const input = parseOrThrow(createShareSchema, body);
    try {
      const { share, token } = await this.shares.create(
        principal,
        id,
        {
          expiresInMs: input.expiresIn,
          expiresAt: input.expiresAt === undefined ? undefined : new Date(input.expiresAt),
          maxDownloads: input.maxDownloads,
          password: input.password,
          note: input.note,
        },
        req.ip,
      );
      return { ...shareView(share, this.shares.now()), url: `${this.linkBase(req)}/s/${token}` };
    } catch (error) {
      if (error instanceof ShareExpiryError) throw new BadRequestException(error.message);
      throw error;
    }
  }

  @Get('files/:id/shares')
  @ApiOperation({
    summary: "A file's share links, newest first (never their tokens)",
    operationId: 'listFileShares',
  })
  @ApiResponse({ status: 200, type: ShareListDto })
  @ApiErrors([404, 'No such file of yours'])
  async listForFile(@CurrentPrincipal() principal: UserPrincipal, @Param('id', uuid('file')) id: string) {
    const now = this.shares.now();
    return { items: (await this.shares.listForFile(principal, id)).map((s) => shareView(s, now)) };
  }

  @Get('shares')
  @ApiOperation({ summary: 'All your share links, newest first', operationId: 'listShares' })
  @ApiQueryFrom(pageQuerySchema, { limit: 'Page size', cursor: 'nextCursor of the previous page' })
  @ApiResponse({ status: 200, type: SharePageDto })
  @ApiErrors([400, 'Invalid limit or cursor'])
  async list(@CurrentPrincipal() principal: UserPrincipal, @Query() query: unknown) {
    const { limit, cursor } = parseOrThrow(pageQuerySchema, query);
    const page = await this.shares.listAll(principal, limit, cursor);
    const now = this.shares.now();
    return { items: page.items.map((s) => shareView(s, now)), nextCursor: page.nextCursor };
  }

  @Delete('shares/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke a share link (it answers 410 from now on)', operationId: 'revokeShare' })
  @ApiResponse({ status: 204, description: 'Revoked' })
  @ApiErrors([404, 'No such active link of yours'])
  async revoke(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Param('id', uuid('share link')) id: string,
  ): Promise<void> {
    if (!(await this.shares.revoke(principal, id, req.ip)))
      throw new NotFoundException('No such share link.');
  }
}
