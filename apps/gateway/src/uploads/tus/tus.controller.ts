import {
  Controller,
  Delete,
  Head,
  HttpCode,
  HttpException,
  Inject,
  Options,
  Param,
  ParseUUIDPipe,
  Patch,
  Post,
  Req,
  Res,
  UnsupportedMediaTypeException,
  UseGuards,
} from '@nestjs/common';
import { ApiExcludeEndpoint, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { TESS_CONFIG, type TessConfig } from '#common';
import { ApiAuthGuard } from '../../auth/api-auth.guard.js';
import { ApiAuth, ApiErrors } from '../../http/openapi.js';
import { TusService, type TusUploadState } from './tus.service.js';
import {
  parseByteCount,
  parseChecksum,
  parseDeclaredSha256,
  parseMetadata,
  SHA256_HEADER,
  TUS_CHECKSUM_ALGORITHMS,
  TUS_CONTENT_TYPE,
  TUS_EXTENSIONS,
  TUS_VERSION,
} from './tus-headers.js';

const uuid = new ParseUUIDPipe({
  version: '4',
  exceptionFactory: () => new HttpException('No such upload.', 404),
});

const TUS_RESUMABLE = ApiHeader({ name: 'Tus-Resumable', required: true, schema: { enum: [TUS_VERSION] } });

/** The headers that describe an upload's state on every answer about it. */
function describe(res: Response, state: TusUploadState): void {
  res.setHeader('Upload-Offset', String(state.offset));
  if (state.expiresAt) res.setHeader('Upload-Expires', state.expiresAt.toUTCString());
}

function isChunk(req: Request): boolean {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === TUS_CONTENT_TYPE;
}

/**
 * tus 1.0.0 resumable uploads at /api/v1/tus (https://tus.io/protocols/resumable-upload). The
 * `Tus-Resumable` check (412) and response header come from TusResumableMiddleware, before any guard.
 * Same authentication as the rest of /api/v1; an upload belongs to its creator, everyone else gets 404.
 */
@ApiTags('uploads')
@Controller('api/v1/tus')
export class TusController {
  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly tus: TusService,
  ) {}

  // Discovery (Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm) is the tus protocol's own,
  // public and the same on every URL; it stays out of the OpenAPI document (no generated client calls it).
  @Options()
  @HttpCode(204)
  @ApiExcludeEndpoint()
  options(@Res({ passthrough: true }) res: Response): void {
    this.discovery(res);
  }

  @Options(':id')
  @HttpCode(204)
  @ApiExcludeEndpoint()
  uploadOptions(@Res({ passthrough: true }) res: Response): void {
    this.discovery(res);
  }

  @Post()
  @UseGuards(ApiAuthGuard)
  @ApiAuth()
  @TUS_RESUMABLE
  @ApiHeader({ name: 'Upload-Length', required: true, description: 'Size of the whole file in bytes' })
  @ApiHeader({
    name: 'Upload-Metadata',
    required: false,
    description:
      'base64 pairs: filename, filetype, sha256 (hex SHA-256 of the whole file, checked by the worker)',
  })
  @ApiOperation({
    summary: 'Create a resumable upload (creation, creation-with-upload); 201 + Location',
    operationId: 'tusCreate',
  })
  @ApiResponse({
    status: 201,
    description: 'Location: the upload URL; Upload-Offset with creation-with-upload',
  })
  @ApiErrors(
    [
      400,
      'Malformed Upload-Length, Upload-Metadata or Upload-Checksum; Upload-Defer-Length is not supported',
    ],
    [409, 'The upload would exceed your file-count quota'],
    [412, 'Tus-Resumable is missing or not 1.0.0'],
    [413, 'Upload-Length over MAX_FILE_SIZE or your remaining byte quota; nothing was created'],
    [460, 'creation-with-upload: the first chunk did not match its Upload-Checksum'],
    [503, 'The key service or the processing queue is unavailable'],
  )
  async create(@Req() req: Request, @Res() res: Response): Promise<void> {
    if (req.headers['upload-defer-length'] !== undefined) {
      throw new HttpException(
        'Upload-Defer-Length is not supported: send Upload-Length with the size of the whole file.',
        400,
      );
    }
    const length = parseByteCount(req.headers['upload-length'] as string | undefined, 'Upload-Length');
    const metadata = parseMetadata(req.headers['upload-metadata'] as string | undefined);
    const withBody = isChunk(req);
    const checksum = withBody ? parseChecksum(req.headers['upload-checksum'] as string | undefined) : null;
    let state = await this.tus.create(req.user!.id, { length, metadata, ip: req.ip });
    res.setHeader('Location', `/api/v1/tus/${state.id}`);
    if (withBody) {
      // creation-with-upload: the body is the first chunk, at offset 0. The upload exists either way: if
      // the chunk is refused (checksum, size) the answer is still 201 with the offset it stands at, and
      // the client goes on with PATCH.
      try {
        state = await this.tus.patch(req.user!.id, state.id, { offset: 0, body: req, checksum, ip: req.ip });
      } catch (error) {
        if (!(error instanceof HttpException)) throw error;
        state = await this.tus.head(req.user!.id, state.id);
      }
    }
    describe(res, state);
    res.status(201).end();
  }

  @Head(':id')
  @UseGuards(ApiAuthGuard)
  @ApiAuth()
  @TUS_RESUMABLE
  @ApiOperation({ summary: "An upload's offset, length and metadata", operationId: 'tusHead' })
  @ApiResponse({ status: 200, description: 'Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires' })
  @ApiErrors([404, 'No such upload (or not yours)'], [410, 'The upload expired and was removed'])
  async head(@Req() req: Request, @Res() res: Response, @Param('id', uuid) id: string): Promise<void> {
    const state = await this.tus.head(req.user!.id, id);
    describe(res, state);
    res.setHeader('Upload-Length', String(state.length));
    if (state.metadata) res.setHeader('Upload-Metadata', state.metadata);
    res.setHeader('Cache-Control', 'no-store');
    res.status(200).end();
  }

  @Patch(':id')
  @UseGuards(ApiAuthGuard)
  @ApiAuth()
  @TUS_RESUMABLE
  @ApiHeader({ name: 'Upload-Offset', required: true, description: "The upload's current offset" })
  @ApiHeader({
    name: 'Upload-Checksum',
    required: false,
    description: '"<sha1|sha256|md5> <base64 digest>" of this chunk',
  })
  @ApiHeader({
    name: SHA256_HEADER,
    required: false,
    description:
      'Hex SHA-256 of the whole file, for a client that knows it only while uploading; at the latest on the PATCH that completes the upload. Recorded before the chunk, checked by the worker like Upload-Metadata sha256; the same value again is accepted, another one 409',
  })
  @ApiOperation({
    summary: 'Append a chunk (Content-Type: application/offset+octet-stream); 204 + Upload-Offset',
    operationId: 'tusPatch',
  })
  @ApiResponse({ status: 204, description: 'Upload-Offset: the new offset' })
  @ApiErrors(
    [
      400,
      `Malformed Upload-Offset, Upload-Checksum or ${SHA256_HEADER}, or an unsupported checksum algorithm`,
    ],
    [404, 'No such upload (or not yours)'],
    [
      409,
      `Upload-Offset is not the current offset, or a ${SHA256_HEADER} that differs from the declared one or comes after the last byte`,
    ],
    [410, 'The upload expired and was removed'],
    [413, 'The chunk goes past Upload-Length'],
    [415, 'Content-Type is not application/offset+octet-stream'],
    [423, 'Another request is writing to this upload'],
    [460, 'The chunk did not match its Upload-Checksum; the offset did not move'],
    [503, 'The key service or the processing queue is unavailable'],
    [507, 'The server has no room to receive the chunk'],
  )
  async patch(@Req() req: Request, @Res() res: Response, @Param('id', uuid) id: string): Promise<void> {
    if (!isChunk(req)) {
      throw new UnsupportedMediaTypeException(`Send chunks with Content-Type: ${TUS_CONTENT_TYPE}.`);
    }
    const offset = parseByteCount(req.headers['upload-offset'] as string | undefined, 'Upload-Offset');
    const checksum = parseChecksum(req.headers['upload-checksum'] as string | undefined);
    const sha256 = parseDeclaredSha256(req.headers['tess-upload-sha256'] as string | undefined);
    const state = await this.tus.patch(req.user!.id, id, { offset, body: req, checksum, sha256, ip: req.ip });
    describe(res, state);
    res.status(204).end();
  }

  @Delete(':id')
  @UseGuards(ApiAuthGuard)
  @ApiAuth()
  @TUS_RESUMABLE
  @ApiOperation({
    summary: 'Cancel an unfinished upload (termination); nothing is left',
    operationId: 'tusTerminate',
  })
  @ApiResponse({ status: 204, description: 'The upload, its staged bytes and its key are gone' })
  @ApiErrors(
    [404, 'No such upload (or not yours)'],
    [409, 'The upload is complete: delete the file instead'],
    [423, 'Another request is writing to this upload'],
  )
  async terminate(@Req() req: Request, @Res() res: Response, @Param('id', uuid) id: string): Promise<void> {
    await this.tus.terminate(req.user!.id, id, req.ip);
    res.status(204).end();
  }

  private discovery(res: Response): void {
    res.setHeader('Tus-Version', TUS_VERSION);
    res.setHeader('Tus-Extension', TUS_EXTENSIONS.join(','));
    res.setHeader('Tus-Max-Size', String(this.config.uploads.maxFileSize));
    res.setHeader('Tus-Checksum-Algorithm', TUS_CHECKSUM_ALGORITHMS.join(','));
  }
}
