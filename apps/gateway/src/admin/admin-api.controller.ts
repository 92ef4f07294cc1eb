import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  Put,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { deleteUserJobId } from '#common';
import { InvitesService, inviteView } from '../auth/invites.service.js';
import { ApiAuth, ApiBodyFrom, ApiErrors, ApiQueryFrom } from '../http/openapi.js';
import { parseOrThrow } from '../http/validation.js';
import {
  AdminUserDto,
  AdminUserPageDto,
  DeleteRequestedDto,
  FailedJobListDto,
  InviteCreatedDto,
  InviteListDto,
  MfaResetDto,
  SystemDto,
} from './admin.dto.js';
import { AdminApiGuard } from './admin.gate.js';
import {
  adminUsersQuerySchema,
  createInviteSchema,
  deleteUserQuerySchema,
  JOB_ID,
  quotaSchema,
  uuidParam,
} from './admin.schemas.js';
import { AdminService } from './admin.service.js';

const NOT_ADMIN: [number, string] = [404, 'Not an admin (every admin route answers 404 then), or no such id'];

function jobIdParam(id: string): string {
  if (!JOB_ID.test(id)) throw new NotFoundException('No such job.');
  return id;
}

/**
 * The admin API (docs/security.md item 37): accounts, quotas, invites and jobs, for admins' bearer tokens
 * and sessions only. Metadata only: no route here returns, or leads to, a file's content.
 */
@ApiTags('admin')
@ApiAuth()
@Controller('api/v1/admin')
@UseGuards(AdminApiGuard)
export class AdminApiController {
  constructor(
    private readonly admin: AdminService,
    private readonly invites: InvitesService,
  ) {}

  @Get('users')
  @ApiOperation({ summary: 'Users, newest first, with what they store', operationId: 'adminListUsers' })
  @ApiQueryFrom(adminUsersQuerySchema, { q: 'Part of a username or e-mail address', page: 'From 1' })
  @ApiResponse({ status: 200, type: AdminUserPageDto })
  @ApiErrors([400, 'Malformed query'], NOT_ADMIN)
  async users(@Query() query: unknown) {
    const q = parseOrThrow(adminUsersQuerySchema, query);
    const { items, total } = await this.admin.list(q.q || undefined, q.page);
    return { items, total, page: q.page };
  }

  @Get('users/:id')
  @ApiOperation({ summary: 'One user', operationId: 'adminGetUser' })
  @ApiResponse({ status: 200, type: AdminUserDto })
  @ApiErrors(NOT_ADMIN)
  user(@Param('id', uuidParam('user')) id: string) {
    return this.admin.user(id);
  }

  @Post('users/:id/disable')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Disable a user: their sessions, tokens and sockets stop working at once',
    operationId: 'adminDisableUser',
  })
  @ApiResponse({ status: 204, description: 'Disabled' })
  @ApiErrors([400, 'Your own account'], NOT_ADMIN, [409, 'The account is not active'])
  async disable(@Req() req: Request, @Param('id', uuidParam('user')) id: string): Promise<void> {
    await this.admin.disable(req.user!, id, req.ip);
  }

  @Post('users/:id/enable')
  @HttpCode(204)
  @ApiOperation({ summary: 'Enable a disabled user again', operationId: 'adminEnableUser' })
  @ApiResponse({ status: 204, description: 'Enabled' })
  @ApiErrors([400, 'Your own account'], NOT_ADMIN, [409, 'The account is not disabled'])
  async enable(@Req() req: Request, @Param('id', uuidParam('user')) id: string): Promise<void> {
    await this.admin.enable(req.user!, id, req.ip);
  }

  @Put('users/:id/quota')
  @ApiOperation({
    summary: "Set a user's quota overrides (they apply to the next upload)",
    operationId: 'adminSetQuota',
  })
  @ApiBodyFrom('AdminQuotaRequest', quotaSchema)
  @ApiResponse({ status: 200, type: AdminUserDto })
  @ApiErrors([400, 'Malformed body'], NOT_ADMIN)
  setQuota(@Req() req: Request, @Param('id', uuidParam('user')) id: string, @Body() body: unknown) {
    return this.admin.setQuota(req.user!, id, parseOrThrow(quotaSchema, body), req.ip);
  }

  @Post('users/:id/reset-mfa')
  @HttpCode(200)
  @ApiOperation({
    summary: "Remove a user's second factor and recovery codes (they sign in with the password)",
    operationId: 'adminResetMfa',
  })
  @ApiResponse({ status: 200, type: MfaResetDto })
  @ApiErrors(NOT_ADMIN)
  async resetMfa(@Req() req: Request, @Param('id', uuidParam('user')) id: string) {
    return { removed: await this.admin.resetMfa(req.user!, id, req.ip) };
  }

  @Delete('users/:id')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Delete a user with all their files (a background job); confirm with the username',
    operationId: 'adminDeleteUser',
  })
  @ApiQueryFrom(deleteUserQuerySchema, { confirm: 'The username, typed again (the second step)' })
  @ApiResponse({ status: 202, type: DeleteRequestedDto })
  @ApiErrors([400, 'confirm missing or not the username, or your own account'], NOT_ADMIN, [
    503,
    'The job queue is unavailable',
  ])
  async deleteUser(@Req() req: Request, @Param('id', uuidParam('user')) id: string, @Query() query: unknown) {
    const { confirm } = parseOrThrow(deleteUserQuerySchema, query);
    await this.admin.requestDelete(req.user!, id, confirm, req.ip);
    return { jobId: deleteUserJobId(id) };
  }

  @Get('invites')
  @ApiOperation({
    summary: 'Invite links, newest first (never their tokens)',
    operationId: 'adminListInvites',
  })
  @ApiResponse({ status: 200, type: InviteListDto })
  @ApiErrors(NOT_ADMIN)
  async listInvites() {
    return { items: (await this.invites.list()).map(inviteView) };
  }

  @Post('invites')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Create a single-use, expiring invite link (shown once)',
    operationId: 'adminCreateInvite',
  })
  @ApiBodyFrom('AdminCreateInviteRequest', createInviteSchema)
  @ApiResponse({ status: 201, type: InviteCreatedDto })
  @ApiErrors([400, 'Malformed body'], NOT_ADMIN)
  async createInvite(@Req() req: Request, @Body() body: unknown) {
    const input = parseOrThrow(createInviteSchema, body ?? {});
    const { invite, token } = await this.invites.create(
      req.user!,
      { email: input.email ?? null, expiresInMs: input.expiresIn },
      req.ip,
    );
    return { ...inviteView(invite), url: this.invites.linkFor(token, req) };
  }

  @Delete('invites/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke an unused invite link', operationId: 'adminRevokeInvite' })
  @ApiResponse({ status: 204, description: 'Revoked' })
  @ApiErrors([404, 'Not an admin, or no unused invite with that id'])
  async revokeInvite(@Req() req: Request, @Param('id', uuidParam('invite')) id: string): Promise<void> {
    if (!(await this.invites.revoke(req.user!, id, req.ip)))
      throw new NotFoundException('No such unused invite.');
  }

  @Get('system')
  @ApiOperation({
    summary: 'Storage used, files per status, queue depth, failed jobs and workers',
    operationId: 'adminSystem',
  })
  @ApiResponse({ status: 200, type: SystemDto })
  @ApiErrors(NOT_ADMIN)
  system() {
    return this.admin.system();
  }

  @Get('jobs')
  @ApiOperation({ summary: 'Failed jobs, newest first, with their reason', operationId: 'adminFailedJobs' })
  @ApiResponse({ status: 200, type: FailedJobListDto })
  @ApiErrors(NOT_ADMIN)
  async failedJobs() {
    return { items: (await this.admin.system()).failedJobs };
  }

  @Post('jobs/:id/retry')
  @HttpCode(204)
  @ApiOperation({ summary: 'Run a failed job again', operationId: 'adminRetryJob' })
  @ApiResponse({ status: 204, description: 'Back in the queue' })
  @ApiErrors(NOT_ADMIN, [409, 'The job is not failed'], [503, 'The job queue is unavailable'])
  async retry(@Req() req: Request, @Param('id') id: string): Promise<void> {
    await this.admin.retryJob(req.user!, jobIdParam(id), req.ip);
  }

  @Delete('jobs/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Discard a failed job', operationId: 'adminDiscardJob' })
  @ApiResponse({ status: 204, description: 'Removed from the queue' })
  @ApiErrors(NOT_ADMIN, [409, 'The job is not failed'], [503, 'The job queue is unavailable'])
  async discard(@Req() req: Request, @Param('id') id: string): Promise<void> {
    await this.admin.discardJob(req.user!, jobIdParam(id), req.ip);
  }
}
