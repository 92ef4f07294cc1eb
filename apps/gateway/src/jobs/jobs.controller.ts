import {
  Controller,
  Get,
  HttpException,
  HttpStatus,
  Param,
  ParseUUIDPipe,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import {
  type FileEntity,
  FileRepository,
  type FileStatus,
  type FileVersion,
  FileVersionRepository,
  type JobProgress,
} from '#common';
import { AccessPolicy } from '../access/access.policy.js';
import { CurrentPrincipal } from '../access/principal.decorator.js';
import type { UserPrincipal } from '../access/principal.js';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { ApiAuth, ApiErrors, ApiQueryFrom, JobDto, JobPageDto } from '../http/openapi.js';
import { pageQuerySchema, parseOrThrow } from '../http/validation.js';
import { JobQueue } from '../infra/job-queue.js';

const JOB_STATUS = {
  // A resumable upload still arriving: its job is created once the last byte is in.
  receiving: 'receiving',
  queued: 'queued',
  processing: 'active',
  stored: 'completed',
  corrupt: 'completed',
  failed: 'failed',
  rejected: 'failed',
  infected: 'failed',
} as const satisfies Record<FileStatus, string>;

export interface JobView {
  id: string;
  fileId: string;
  status: (typeof JOB_STATUS)[keyof typeof JOB_STATUS];
  progress: JobProgress;
  error?: string;
  createdAt: Date;
  finishedAt?: Date;
}

const uuid = new ParseUUIDPipe({
  version: '4',
  exceptionFactory: () => new HttpException('No such job.', 404),
});

/**
 * Jobs, as docs/architecture.md ("An upload") describes them. The job id is the upload's row id: the file id
 * for a first upload, the upload row of a new version (POST /files/:id/versions answers it as `upload.id`)
 * otherwise; `fileId` is always the file it is for. PostgreSQL is the source of truth for the outcome and
 * BullMQ supplies the live progress of running jobs.
 */
@ApiTags('jobs')
@ApiAuth()
@Controller('api/v1/jobs')
@UseGuards(ApiAuthGuard)
export class JobsController {
  constructor(
    private readonly files: FileRepository,
    private readonly versions: FileVersionRepository,
    private readonly access: AccessPolicy,
    private readonly jobs: JobQueue,
  ) {}

  private async view(file: FileEntity): Promise<JobView> {
    let progress: JobProgress = { stage: 'queued', bytesDone: 0, bytesTotal: file.size };
    if (file.status === 'stored' || file.status === 'corrupt')
      progress = { stage: 'stored', bytesDone: file.size, bytesTotal: file.size };
    if (file.status === 'failed' || file.status === 'rejected' || file.status === 'infected')
      progress = { stage: 'failed', bytesDone: 0, bytesTotal: file.size };
    if (file.status === 'processing') {
      progress = (await this.jobs.progressOf('encrypt-file', file.id)) ?? {
        stage: 'encrypting',
        bytesDone: 0,
        bytesTotal: file.size,
      };
    }
    return {
      id: file.id,
      fileId: file.versionOf ?? file.id,
      status: JOB_STATUS[file.status],
      progress,
      ...(file.error && file.status !== 'stored' ? { error: file.error } : {}),
      createdAt: file.createdAt,
      ...(file.finishedAt ? { finishedAt: file.finishedAt } : {}),
    };
  }

  @Get()
  @ApiOperation({
    summary: 'Your jobs (one per upload, new versions of a file included), newest first',
    operationId: 'listJobs',
  })
  @ApiQueryFrom(pageQuerySchema, { limit: 'Page size', cursor: 'nextCursor of the previous page' })
  @ApiResponse({ status: 200, type: JobPageDto })
  @ApiErrors([400, 'Invalid limit or cursor'])
  async list(@Req() req: Request, @Query() query: unknown) {
    const { limit, cursor } = parseOrThrow(pageQuerySchema, query);
    const page = await this.files.listUploadsForOwner(req.user!.id, limit, cursor);
    return { items: await Promise.all(page.items.map((f) => this.view(f))), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One job with live progress', operationId: 'getJob' })
  @ApiResponse({ status: 200, type: JobDto })
  @ApiErrors([404, 'No such job of yours'])
  async get(@CurrentPrincipal() principal: UserPrincipal, @Param('id', uuid) id: string): Promise<JobView> {
    const file = await this.access.findReadableFile(principal, id);
    if (file) return this.view(file);
    // A new version's upload row is folded into its file once stored; its job is then that version's.
    const version = await this.versions.broughtBy(principal.userId, id);
    if (!version) throw new HttpException('No such job.', HttpStatus.NOT_FOUND);
    return versionJob(id, version);
  }
}

/** The finished job of an upload that became `version` of its file. */
function versionJob(id: string, version: FileVersion): JobView {
  return {
    id,
    fileId: version.fileId,
    status: JOB_STATUS[version.status],
    progress: { stage: 'stored', bytesDone: version.size, bytesTotal: version.size },
    createdAt: version.createdAt,
    finishedAt: version.storedAt,
  };
}
