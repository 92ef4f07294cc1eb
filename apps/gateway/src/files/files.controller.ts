import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpException,
  HttpStatus,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiProduces, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { create as contentDisposition } from 'content-disposition';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { AuditRepository, FileRepository, isIntegrityFailure } from '#common';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { ApiAuth, ApiErrors, FileDto, FilePageDto, VerifyResultDto } from '../http/openapi.js';
import { parseOrThrow } from '../http/validation.js';
import { FilesService, fileView } from './files.service.js';

export const pageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1, 'limit must be 1-100').max(100, 'limit must be 1-100').default(25),
  cursor: z.string().max(200).optional(),
});

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
    private readonly audit: AuditRepository,
  ) {}

  @Get()
  @ApiOperation({ summary: 'List your files, newest first' })
  @ApiQuery({ name: 'limit', required: false, description: '1-100, default 25' })
  @ApiQuery({ name: 'cursor', required: false, description: 'nextCursor of the previous page' })
  @ApiResponse({ status: 200, type: FilePageDto })
  @ApiErrors([400, 'Invalid limit or cursor'])
  async list(@Req() req: Request, @Query() query: unknown) {
    const { limit, cursor } = parseOrThrow(pageQuerySchema, query);
    const page = await this.files.listForOwner(req.user!.id, limit, cursor);
    return { items: page.items.map(fileView), nextCursor: page.nextCursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One file' })
  @ApiResponse({ status: 200, type: FileDto })
  @ApiErrors([404, 'No such file of yours'])
  async get(@Req() req: Request, @Param('id', uuid) id: string) {
    return fileView(await this.service.get(req.user!.id, id));
  }

  /**
   * Verified, decrypted content. `Range: bytes=a-b | a- | -n` (one range) -> 206 with only the needed
   * segments fetched; an unsatisfiable range -> 416. Integrity failures before the first byte -> 502;
   * after it, the connection is cut so the client never sees a complete body.
   */
  @Get(':id/content')
  @ApiOperation({ summary: 'Download verified plaintext; supports a single Range (206)' })
  @ApiHeader({ name: 'Range', required: false, description: 'bytes=a-b, bytes=a- or bytes=-n' })
  @ApiProduces('application/octet-stream')
  @ApiResponse({ status: 200, description: 'The whole file', schema: { type: 'string', format: 'binary' } })
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
  async content(@Req() req: Request, @Res() res: Response, @Param('id', uuid) id: string): Promise<void> {
    const file = await this.service.get(req.user!.id, id);
    let range: { start: number; end: number } | undefined;
    if (req.headers.range && file.status === 'stored') {
      const parsed = req.range(file.size, { combine: true });
      if (parsed === -1 || (file.size === 0 && parsed !== -2)) {
        res.setHeader('Content-Range', `bytes */${file.size}`);
        throw new HttpException(
          `The range is outside the file (${file.size} bytes).`,
          HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
        );
      }
      // Malformed (-2) or multiple ranges: ignore the header and send the whole file (RFC 9110 allows it).
      if (Array.isArray(parsed) && parsed.type === 'bytes' && parsed.length === 1) range = parsed[0];
    }
    // Open and read up to the first verified chunk before any header goes out, so that an integrity
    // failure in the first segments (or of the header or key) is still a clean 502, not a cut connection.
    let opened: Awaited<ReturnType<FilesService['open']>>;
    let iterator: AsyncIterator<Buffer>;
    let first: IteratorResult<Buffer>;
    let reading = false;
    try {
      opened = await this.service.open(file, range, req.ip);
      reading = true;
      iterator = opened.stream[Symbol.asyncIterator]();
      first = await iterator.next();
    } catch (error) {
      if (isIntegrityFailure(error)) {
        // open() already marks the failures it finds itself; mark only those found while reading.
        if (reading) await this.service.markCorrupt(file, error as Error, req.ip);
        throw new HttpException(
          'The stored object failed its integrity check; it has been marked corrupt and nothing was sent.',
          HttpStatus.BAD_GATEWAY,
        );
      }
      throw error;
    }
    res.status(range ? 206 : 200);
    res.setHeader('Content-Type', file.contentType);
    res.setHeader('Content-Length', String(opened.end - opened.start + 1));
    res.setHeader('Content-Disposition', contentDisposition(file.filename, { type: 'attachment' }));
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('Cache-Control', 'private, no-store');
    if (file.sha256) res.setHeader('ETag', `"sha256-${file.sha256}"`);
    if (range) res.setHeader('Content-Range', `bytes ${opened.start}-${opened.end}/${opened.size}`);
    if (!range) {
      await this.audit.record({
        action: 'file.downloaded',
        userId: file.ownerId,
        fileId: file.id,
        ip: req.ip,
      });
    }
    async function* body(): AsyncGenerator<Buffer> {
      if (!first.done) yield first.value;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    }
    try {
      await pipeline(Readable.from(body()), res);
    } catch (error) {
      if (isIntegrityFailure(error)) await this.service.markCorrupt(file, error as Error, req.ip);
      res.destroy();
    }
  }

  @Post(':id/verify')
  @HttpCode(200)
  @ApiOperation({ summary: 'Re-read the whole object: every GCM tag and the SHA-256' })
  @ApiResponse({ status: 200, type: VerifyResultDto })
  @ApiErrors([404, 'No such file of yours'], [409, 'The file is not stored'])
  async verify(@Req() req: Request, @Param('id', uuid) id: string) {
    const file = await this.service.get(req.user!.id, id);
    const { ok, checkedBytes } = await this.service.verify(file, req.ip);
    return { ok, checkedBytes };
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete the object, its key and the row (a running job is discarded)' })
  @ApiResponse({ status: 204, description: 'Deleted' })
  @ApiErrors([404, 'No such file of yours (or already deleted)'])
  async delete(@Req() req: Request, @Param('id', uuid) id: string): Promise<void> {
    await this.service.delete(await this.service.get(req.user!.id, id), req.ip);
  }
}
