import {
  BadRequestException,
  Body,
  Controller,
  ForbiddenException,
  HttpCode,
  Post,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { changePasswordSchema } from '../auth/auth.schemas.js';
import { AuthService, WeakPasswordError, WrongPasswordError } from '../auth/auth.service.js';
import { ApiAuth, ApiBodyFrom, ApiErrors } from '../http/openapi.js';
import { parseOrThrow } from '../http/validation.js';

@ApiTags('account')
@ApiAuth()
@Controller('api/v1/account')
@UseGuards(ApiAuthGuard)
export class AccountApiController {
  constructor(private readonly auth: AuthService) {}

  /**
   * A session caller keeps its own session (and CSRF token); a bearer caller ends every session. The
   * caller's API tokens, this one included, keep working (docs/security.md item 11a).
   */
  @Post('password')
  @HttpCode(204)
  @ApiOperation({
    summary:
      'Change your password: the current one is required; your other sessions are signed out, your API tokens are kept',
    operationId: 'changePassword',
  })
  @ApiBodyFrom('ChangePasswordRequest', changePasswordSchema)
  @ApiResponse({ status: 204, description: 'Changed' })
  @ApiErrors(
    [400, 'Malformed body, or a new password the policy refuses'],
    [403, 'The current password is not correct (or a session call without a valid X-CSRF-Token)'],
    [429, 'Too many wrong passwords (the sign-in limits)'],
  )
  async change(@Req() req: Request, @Body() body: unknown): Promise<void> {
    const input = parseOrThrow(changePasswordSchema, body);
    const keep = req.authMethod === 'session' ? req.sessionID : undefined;
    try {
      await this.auth.changePassword(req.user!, input, req.ip ?? 'unknown', 'api', keep);
    } catch (error) {
      if (error instanceof WeakPasswordError) throw new BadRequestException(`newPassword: ${error.message}`);
      if (error instanceof WrongPasswordError) throw new ForbiddenException(error.message);
      throw error;
    }
  }
}
