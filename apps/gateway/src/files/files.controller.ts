import {
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpException,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { FileRepository } from '#common';
import { AccessPolicy } from '../access/access.policy.js';
import { CurrentPrincipal } from '../access/principal.decorator.js';
import type { UserPrincipal } from '../access/principal.js';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { DownloadResponder } from '../downloads/download.responder.js';
import { FileReader } from '../downloads/file-reader.service.js';
import { ApiAuth, ApiErrors, ApiQueryFrom, FileDto, FilePageDto, VerifyResultDto } from '../http/openapi.js';
import { pageQuerySchema, parseOrThrow } from '../http/validation.js';
import { FilesService, fileView } from './files.service.js';

const uuid = new ParseUUIDPipe({
  version: '4',
  exceptionFactory: () => new HttpException('No such file.', 404),
});

@ApiTags('files')
@ApiAuth()
@Controller('api/v1/files')
@UseGuards(ApiAuthGuard)
export class FilesController {
  constructor(
    private readonly service: FilesService,
    private readonly files: FileRepository,
    private readonly access: AccessPolicy,
    private readonly downloads: DownloadResponder,
    private readonly reader: FileReader,
  ) {}

  @Get()
  @ApiOperation({ summary: 'List your files, newest first', operationId: 'listFiles' })
  @ApiQueryFrom(pageQuerySchema, { limit: 'Page size', cursor: 'nextCursor of the previous page' })
  @ApiResponse({ status: 200, type: FilePageDto })
  @ApiErrors([400, 'Invalid limit or cursor'])
  async list(@CurrentPrincipal() principal: UserPrincipal, @Query() query: unknown) {
    const { limit, cursor } = parseOrThrow(pageQuerySchema, query);
    const page = await this.files.listForOwner(principal.userId, limit, cursor);
    const twins = await this.files.twinsOf(principal.userId, page.items);
    return { items: page.items.map((f) => fileView(f, twins.get(f.id))), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One file', operationId: 'getFile' })
  @ApiResponse({ status: 200, type: FileDto })
  @ApiErrors([404, 'No such file of yours'])
  async get(@CurrentPrincipal() principal: UserPrincipal, @Param('id', uuid) id: string) {
    const file = await this.access.readableFile(principal, id);
    return fileView(file, (await this.files.twinsOf(file.ownerId, [file])).get(file.id));
  }

  /**
   * Verified, decrypted content. `Range: bytes=a-b | a- | -n` (one range) -> 206 with only the needed
   * segments fetched; an unsatisfiable range -> 416. Integrity failures before the first byte -> 502;
   * after it, the connection is cut so the client never sees a complete body.
   */
  @Get(':id/content')
  @ApiOperation({
    summary: 'Download verified plaintext; supports a single Range (206)',
    operationId: 'downloadFile',
  })
  @ApiHeader({ name: 'Range', required: false, description: 'bytes=a-b, bytes=a- or bytes=-n' })
  @ApiProduces('application/octet-stream')
  @ApiResponse({ status: 200, description: 'The whole file', schema: { type: 'string', format: 'binary' } })
  @ApiResponse({ status: 304, description: 'If-None-Match holds the current ETag ("sha256-<hex>"); no body' })
  @ApiResponse({
    status: 206,
    description: 'The requested range',
    schema: { type: 'string', format: 'binary' },
  })
  @ApiErrors(
    [404, 'No such file of yours'],
    [409, 'The file is not stored (queued, processing, failed or corrupt)'],
    [416, 'The range is outside the file'],
    [502, 'The stored object failed its integrity check; the file is now corrupt'],
  )
  async content(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Res() res: Response,
    @Param('id', uuid) id: string,
  ): Promise<void> {
    const file = await this.access.readableFile(principal, id);
    await this.downloads.send(file, req, res, { action: 'file.downloaded', userId: file.ownerId });
  }

  @Post(':id/verify')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Re-read the whole object: every GCM tag and the SHA-256',
    operationId: 'verifyFile',
  })
  @ApiResponse({ status: 200, type: VerifyResultDto })
  @ApiErrors([404, 'No such file of yours'], [409, 'The file is not stored'])
  async verify(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Param('id', uuid) id: string,
  ) {
    const file = await this.access.readableFile(principal, id);
    const { ok, checkedBytes } = await this.reader.verify(file, req.ip);
    return { ok, checkedBytes };
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Delete the object, its key and the row (a running job is discarded)',
    operationId: 'deleteFile',
  })
  @ApiResponse({ status: 204, description: 'Deleted' })
  @ApiErrors([404, 'No such file of yours (or already deleted)'])
  async delete(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Param('id', uuid) id: string,
  ): Promise<void> {
    await this.service.delete(await this.access.deletableFile(principal, id), req.ip);
  }
}
