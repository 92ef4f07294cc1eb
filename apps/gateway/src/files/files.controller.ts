import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpException,
  Param,
  ParseUUIDPipe,
  Patch,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { ApiConsumes, ApiHeader, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { type FileEntity, FileRepository } from '#common';
import { AccessPolicy } from '../access/access.policy.js';
import { CurrentPrincipal } from '../access/principal.decorator.js';
import type { UserPrincipal } from '../access/principal.js';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { DownloadResponder } from '../downloads/download.responder.js';
import { FileReader } from '../downloads/file-reader.service.js';
import {
  ApiAuth,
  ApiBodyFrom,
  ApiErrors,
  ApiQueryFrom,
  BulkDeleteResultDto,
  FileDto,
  FilePageDto,
  VerifyResultDto,
} from '../http/openapi.js';
import { parseOrThrow } from '../http/validation.js';
import { TusService } from '../uploads/tus/tus.service.js';
import { BulkFilesService, MAX_BULK_IDS } from './bulk-files.service.js';
import { checkedName } from './display-name.js';
import { bulkIdsInput, bulkIdsSchema, fileListQuerySchema, patchFileSchema } from './file-schemas.js';
import { FilesService, type FileView, fileView } from './files.service.js';

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
    private readonly bulk: BulkFilesService,
    private readonly tus: TusService,
  ) {}

  /** The rows' public shape; an unfinished resumable upload also says how much of it has arrived. */
  private async views(rows: FileEntity[]): Promise<FileView[]> {
    if (rows.length === 0) return [];
    const twins = await this.files.twinsOf(rows[0]!.ownerId, rows);
    return Promise.all(
      rows.map(async (row) => fileView(row, twins.get(row.id), await this.tus.receivedBytes(row))),
    );
  }

  /**
   * Keyset pages for every order (tie-broken on the id, no OFFSET), so a page never repeats or skips a
   * file while others are added; the cursor is tied to its sort and order.
   */
  @Get()
  @ApiOperation({
    summary: 'List your files: newest first by default; search, folder, status, sort and order',
    operationId: 'listFiles',
  })
  @ApiQueryFrom(fileListQuerySchema, { limit: 'Page size', cursor: 'nextCursor of the previous page' })
  @ApiResponse({ status: 200, type: FilePageDto })
  @ApiErrors(
    [400, 'Invalid limit, cursor, sort, order, status or q (or a cursor of another order)'],
    [404, 'No such folder of yours'],
  )
  async list(@CurrentPrincipal() principal: UserPrincipal, @Query() query: unknown) {
    const input = parseOrThrow(fileListQuerySchema, query);
    if (input.folderId) await this.access.folder(principal, input.folderId);
    const page = await this.files.listPage(principal.userId, {
      ...input,
      order: input.order ?? (input.sort === 'name' ? 'asc' : 'desc'),
    });
    return { items: await this.views(page.items), nextCursor: page.nextCursor };
  }

  @Post('bulk-delete')
  @HttpCode(200)
  @ApiOperation({
    summary: `Delete up to ${MAX_BULK_IDS} files; every id is reported (deleted, not_found or failed)`,
    operationId: 'bulkDeleteFiles',
  })
  @ApiBodyFrom('BulkIdsRequest', bulkIdsSchema)
  @ApiResponse({ status: 200, type: BulkDeleteResultDto })
  @ApiErrors([400, `ids missing, not file ids, repeated, or more than ${MAX_BULK_IDS}`])
  async bulkDelete(@CurrentPrincipal() principal: UserPrincipal, @Req() req: Request, @Body() body: unknown) {
    const { ids } = parseOrThrow(bulkIdsSchema, body);
    const results = await this.bulk.delete(principal.userId, ids, req.ip);
    const count = (status: string) => results.filter((r) => r.status === status).length;
    return { deleted: count('deleted'), notFound: count('not_found'), failed: count('failed'), results };
  }

  /**
   * One ZIP of the verified plaintexts, streamed. A file failing verification midway destroys the
   * response (an incomplete archive no unzip tool accepts) instead of shipping its bad bytes.
   */
  @Post('archive')
  @HttpCode(200)
  @ApiOperation({
    summary: `Download up to ${MAX_BULK_IDS} stored files as one streamed ZIP of verified plaintexts`,
    operationId: 'downloadArchive',
  })
  @ApiConsumes('application/json', 'application/x-www-form-urlencoded')
  @ApiBodyFrom('BulkIdsRequest', bulkIdsSchema)
  @ApiProduces('application/zip')
  @ApiResponse({
    status: 200,
    description: 'The ZIP; cut short (no central directory) if a file fails verification midway',
    schema: { type: 'string', format: 'binary' },
  })
  @ApiErrors(
    [400, `ids missing, not file ids, repeated, or more than ${MAX_BULK_IDS}`],
    [404, 'Some of the files do not exist or are not yours'],
    [409, 'Some of the files are not stored'],
  )
  async archive(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Res() res: Response,
    @Body() body: unknown,
  ): Promise<void> {
    const { ids } = parseOrThrow(bulkIdsSchema, bulkIdsInput(body));
    await this.bulk.sendZip(principal.userId, ids, req, res);
  }

  @Get(':id')
  @ApiOperation({ summary: 'One file', operationId: 'getFile' })
  @ApiResponse({ status: 200, type: FileDto })
  @ApiErrors([404, 'No such file of yours'])
  async get(@CurrentPrincipal() principal: UserPrincipal, @Param('id', uuid) id: string) {
    const file = await this.access.readableFile(principal, id);
    return (await this.views([file]))[0];
  }

  /**
   * Verified, decrypted content. `Range: bytes=a-b | a- | -n` (one range) -> 206 with only the needed
   * segments fetched; an unsatisfiable range -> 416. Integrity failures before the first byte -> 502;
   * after it, the connection is cut so the client never sees a complete body.
   */
  @Patch(':id')
  @ApiOperation({
    summary: 'Rename and/or move a file (metadata only: the stored object does not change)',
    operationId: 'updateFile',
  })
  @ApiBodyFrom('UpdateFileRequest', patchFileSchema)
  @ApiResponse({ status: 200, type: FileDto })
  @ApiErrors(
    [400, 'A refused name (empty, ".", "..", "/", control or bidi characters, over 255) or a bad body'],
    [404, 'No such file or folder of yours'],
    [409, 'That name is already used in the target folder (case-insensitively)'],
    [415, 'The new name is blocked by the file-type policy'],
  )
  async update(
    @CurrentPrincipal() principal: UserPrincipal,
    @Req() req: Request,
    @Param('id', uuid) id: string,
    @Body() body: unknown,
  ) {
    const input = parseOrThrow(patchFileSchema, body);
    const file = await this.access.modifiableFile(principal, id);
    const filename = input.filename === undefined ? undefined : checkedName(input.filename, 'file');
    if (input.folderId) await this.access.folder(principal, input.folderId);
    const updated = await this.service.update(file, { filename, folderId: input.folderId }, req.ip);
    return (await this.views([updated]))[0];
  }

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
