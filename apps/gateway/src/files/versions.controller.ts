import {
  ConflictException,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpException,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  type PipeTransform,
  Post,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiHeader,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { FileEntity } from '#common';
import { AccessPolicy } from '../access/access.policy.js';
import { CurrentPrincipal } from '../access/principal.decorator.js';
import type { UserPrincipal } from '../access/principal.js';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { DownloadResponder } from '../downloads/download.responder.js';
import {
  ApiAuth,
  ApiErrors,
  FileVersionListDto,
  VersionAcceptedDto,
  VersionRestoredDto,
  VersionUploadBodyDto,
} from '../http/openapi.js';
import { UploadsService } from '../uploads/uploads.service.js';
import { VersionsService } from './versions.service.js';

const uuid = new ParseUUIDPipe({
  version: '4',
  exceptionFactory: () => new HttpException('No such file.', 404),
});

/** A version number: a positive integer (anything else names no version: 404). */
const versionNumber: PipeTransform<string, number> = {
  transform(value: string): number {
    const n = /^[1-9][0-9]{0,8}$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n)) throw new NotFoundException('No such version.');
    return n;
  },
};

/**
 * The versions of a file (docs/architecture.md, "File versions"): list, upload a new one, download one,
 * restore one as a new current version, remove a non-current one. The file is checked through the
 * AccessPolicy like every file route: another user's file (or a version of it) answers 404.
 */
@ApiTags('files')
@ApiAuth()
@Controller('api/v1/files/:id/versions')
@UseGuards(ApiAuthGuard)
export class VersionsController {
  constructor(
    private readonly access: AccessPolicy,
    private readonly versions: VersionsService,
    private readonly uploads: UploadsService,
    private readonly downloads: DownloadResponder,
  ) {}

  @Get()
  @ApiOperation({
    summary: "A file's versions, newest first, and its new versions in the pipeline",
    operationId: 'listFileVersions',
  })
  @ApiResponse({ status: 200, type: FileVersionListDto })
  @ApiErrors([404, 'No such file of yours'])
  async list(@CurrentPrincipal() principal: UserPrincipal, @Param('id', uuid) id: string) {
    return this.versions.list(await this.file(principal, id));
  }

  @Post()
  @HttpCode(202)
  @ApiOperation({
    summary: 'Upload a new version (multipart `file`); it becomes current once stored',
    operationId: 'uploadFileVersion',
  })
  @ApiConsumes('multipart/form-data')
  @ApiBody({ type: VersionUploadBodyDto })
  @ApiResponse({ status: 202, type: VersionAcceptedDto })
  @ApiErrors(
    [400, 'Malformed multipart body, no file or more than one'],
    [404, 'No such file of yours'],
    [409, "The file's first version is not stored yet"],
    [413, 'Over MAX_FILE_SIZE or your byte quota; nothing was stored'],
    [415, 'Not multipart/form-data, or a blocked type'],
    [503, 'The processing queue is unavailable; nothing was stored'],
  )
  async upload(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Param('id', uuid) id: string,
  ) {
    const file = await this.writable(principal, id);
    const [upload] = await this.uploads.receive(req, principal.userId, { versionOf: file });
    return { fileId: file.id, upload: upload! };
  }

  @Get(':n/content')
  @ApiOperation({
    summary: 'Download one version (verified plaintext); supports a single Range (206)',
    operationId: 'downloadFileVersion',
  })
  @ApiParam({ name: 'n', description: 'Version number' })
  @ApiHeader({ name: 'Range', required: false, description: 'bytes=a-b, bytes=a- or bytes=-n' })
  @ApiProduces('application/octet-stream')
  @ApiResponse({
    status: 200,
    description: 'The whole version',
    schema: { type: 'string', format: 'binary' },
  })
  @ApiResponse({
    status: 206,
    description: 'The requested range',
    schema: { type: 'string', format: 'binary' },
  })
  @ApiErrors(
    [404, 'No such file of yours, or no such version'],
    [409, 'The version failed an integrity check'],
    [416, 'The range is outside the version'],
    [502, 'The stored object failed its integrity check; the version is now corrupt'],
  )
  async content(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Res() res: Response,
    @Param('id', uuid) id: string,
    @Param('n', versionNumber) n: number,
  ): Promise<void> {
    const view = await this.versions.versionView(await this.file(principal, id), n);
    await this.downloads.send(view, req, res, {
      action: 'file.downloaded',
      userId: view.ownerId,
      details: { version: n },
    });
  }

  @Post(':n/restore')
  @HttpCode(201)
  @ApiOperation({
    summary:
      'Restore version n: a copy of it (same object and key, no re-encryption) becomes the new current version',
    operationId: 'restoreFileVersion',
  })
  @ApiParam({ name: 'n', description: 'Version number' })
  @ApiResponse({ status: 201, type: VersionRestoredDto })
  @ApiErrors(
    [404, 'No such file of yours, or no such version'],
    [409, 'The file or that version is not stored'],
  )
  async restore(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Param('id', uuid) id: string,
    @Param('n', versionNumber) n: number,
  ) {
    return this.versions.restore(await this.writable(principal, id), n, principal.userId, req.ip);
  }

  @Delete(':n')
  @HttpCode(204)
  @ApiOperation({
    summary:
      'Remove a version that is not current (its object and key too, unless a restored copy shares them)',
    operationId: 'deleteFileVersion',
  })
  @ApiParam({ name: 'n', description: 'Version number' })
  @ApiResponse({ status: 204, description: 'Removed' })
  @ApiErrors([404, 'No such file of yours, or no such version'], [409, 'That is the current version'])
  async remove(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Param('id', uuid) id: string,
    @Param('n', versionNumber) n: number,
  ): Promise<void> {
    await this.versions.remove(await this.writable(principal, id), n, principal.userId, req.ip);
  }

  /** A file (not the upload row of a version) the principal may read. */
  private async file(principal: UserPrincipal, id: string): Promise<FileEntity> {
    const file = await this.access.readableFile(principal, id);
    if (file.versionOf) throw new NotFoundException('No such file.');
    return file;
  }

  /** A file the principal may change, whose first version is stored. */
  private async writable(principal: UserPrincipal, id: string): Promise<FileEntity> {
    const file = await this.access.deletableFile(principal, id);
    if (file.versionOf) throw new NotFoundException('No such file.');
    if (file.status !== 'stored' && file.status !== 'corrupt') {
      throw new ConflictException(
        `This file is ${file.status}; it gets versions once its first one is stored.`,
      );
    }
    return file;
  }
}
