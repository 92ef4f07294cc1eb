import {
  Body,
  Controller,
  Delete,
  ForbiddenException,
  Get,
  HttpCode,
  Inject,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  Post,
  Req,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { z } from 'zod';
import { type ApiTokenEntity, durationSchema, TESS_CONFIG, type TessConfig } from '#common';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { loginSchema } from '../auth/auth.schemas.js';
import { AuthService } from '../auth/auth.service.js';
import { InvalidSecondFactorError, MfaService } from '../auth/mfa.service.js';
import { ApiAuth, ApiBodyFrom, ApiErrors, PUBLIC, TokenCreatedDto, TokenListDto } from '../http/openapi.js';
import { parseOrThrow } from '../http/validation.js';
import { formatDuration, MAX_TOKEN_LIFETIME_MS, MIN_TOKEN_LIFETIME_MS } from './token-expiry.js';
import { TokensService } from './tokens.service.js';

const createTokenSchema = loginSchema.extend({
  name: z.string().trim().min(1).max(100, 'name must be at most 100 characters').optional(),
  // Required when the account has two-factor sign-in: a current TOTP code or an unused recovery code
  // (an account whose only factors are passkeys sends a recovery code, or makes a token on its Security page).
  otp: z.string().trim().min(1).max(64).optional(),
  // The config's duration notation, so `expiresIn` reads like API_TOKEN_MAX_LIFETIME.
  expiresIn: z
    .string({ message: 'must be a duration such as 30d, 12h or 900 (seconds)' })
    .pipe(durationSchema)
    .pipe(
      z
        .number()
        .min(MIN_TOKEN_LIFETIME_MS, `must be at least ${formatDuration(MIN_TOKEN_LIFETIME_MS)}`)
        .max(MAX_TOKEN_LIFETIME_MS, `must be at most ${formatDuration(MAX_TOKEN_LIFETIME_MS)}`),
    )
    .optional(),
});

const view = (t: ApiTokenEntity) => ({
  id: t.id,
  name: t.name,
  createdAt: t.createdAt,
  lastUsedAt: t.lastUsedAt,
  expiresAt: t.expiresAt,
});

@ApiTags('tokens')
@Controller('api/v1/tokens')
export class TokensController {
  constructor(
    private readonly auth: AuthService,
    private readonly tokens: TokensService,
    private readonly mfa: MfaService,
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
  ) {}

  /** Exchanges username + password for a bearer token (throttled like the login form). */
  @Post()
  @HttpCode(201)
  @ApiOperation({
    summary:
      'Exchange username and password (and `otp` when the account has two-factor sign-in) for a bearer token (throttled like the login form)',
    operationId: 'createToken',
    ...PUBLIC,
  })
  @ApiBodyFrom('CreateTokenRequest', createTokenSchema)
  @ApiResponse({ status: 201, type: TokenCreatedDto })
  @ApiErrors(
    [400, 'Malformed body, or expiresIn longer than API_TOKEN_MAX_LIFETIME'],
    [401, 'Invalid username or password, or `otp` missing or wrong for an account with two-factor sign-in'],
    [403, 'MFA_REQUIRED is on and the account has no second factor yet (set one up at the next web sign-in)'],
    [429, 'Too many failed attempts'],
  )
  async create(@Req() req: Request, @Body() body: unknown) {
    const input = parseOrThrow(createTokenSchema, body);
    const ip = req.ip ?? 'unknown';
    const user = await this.auth.authenticate(input.username, input.password, ip);
    // Otherwise this endpoint would be a way around the second factor (docs/security.md item 30).
    const factors = await this.mfa.factors(user.id);
    if (factors.totp || factors.passkeys > 0) {
      if (!input.otp)
        throw new UnauthorizedException(
          factors.totp
            ? 'This account uses two-factor sign-in: send `otp`, a current code from the authenticator app or an unused recovery code.'
            : 'This account signs in with a passkey, which a command line cannot use: send `otp` with an unused recovery code, or create a token on the Security page (/account/security).',
        );
      try {
        await this.mfa.verify(user, input.otp, ip, 'api-token');
      } catch (error) {
        if (error instanceof InvalidSecondFactorError)
          throw new UnauthorizedException(
            factors.totp
              ? 'The `otp` is not valid: send a current code or an unused recovery code.'
              : 'The `otp` is not valid: send an unused recovery code, or create a token on the Security page (/account/security).',
          );
        throw error;
      }
    } else if (this.config.mfa.required) {
      throw new ForbiddenException(
        'This server requires two-factor sign-in and this account has none yet: sign in on the web page once to set it up, then send `otp` (or create a token on the Security page).',
      );
    }
    const { token, entity } = await this.tokens.create(user.id, input.name ?? 'api', req.ip, input.expiresIn);
    return {
      token,
      id: entity.id,
      name: entity.name,
      createdAt: entity.createdAt,
      expiresAt: entity.expiresAt,
    };
  }

  @Get()
  @UseGuards(ApiAuthGuard)
  @ApiOperation({
    summary: 'List your unrevoked tokens, expired ones included (never the token values)',
    operationId: 'listTokens',
  })
  @ApiAuth()
  @ApiResponse({ status: 200, type: TokenListDto })
  async list(@Req() req: Request) {
    return { tokens: (await this.tokens.list(req.user!.id)).map(view) };
  }

  @Delete(':id')
  @UseGuards(ApiAuthGuard)
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke a token', operationId: 'revokeToken' })
  @ApiAuth()
  @ApiResponse({ status: 204, description: 'Revoked' })
  @ApiErrors([400, 'Malformed id'], [404, 'No such token of yours'])
  async revoke(
    @Req() req: Request,
    @Param('id', new ParseUUIDPipe({ version: '4' })) id: string,
  ): Promise<void> {
    if (!(await this.tokens.revoke(req.user!.id, id, req.ip))) throw new NotFoundException('No such token.');
  }
}
