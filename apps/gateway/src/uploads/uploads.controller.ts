import { Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { ApiAuth, ApiErrors, UploadAcceptedDto, UploadBodyDto } from '../http/openapi.js';
import { type AcceptedUpload, UploadsService } from './uploads.service.js';

@ApiTags('uploads')
@Controller('api/v1/uploads')
@UseGuards(ApiAuthGuard)
export class UploadsController {
  constructor(private readonly uploads: UploadsService) {}

  /** multipart/form-data with one or more `file` fields -> 202 and one queued job per file. */
  @Post()
  @HttpCode(202)
  @ApiOperation({
    summary: 'Upload one or more files (multipart `file` fields); each gets a queued encrypt job',
    operationId: 'uploadFiles',
  })
  @ApiAuth()
  @ApiConsumes('multipart/form-data')
  @ApiBody({ type: UploadBodyDto })
  @ApiResponse({ status: 202, type: UploadAcceptedDto })
  @ApiErrors(
    [400, 'Malformed multipart body, no file, or an unexpected file field'],
    [409, 'The upload would exceed your file-count quota'],
    [413, 'A file is over MAX_FILE_SIZE, too many files, or over your byte quota; nothing was stored'],
    [415, 'Not multipart/form-data'],
    [503, 'The processing queue is unavailable; nothing was stored'],
    [507, 'The server has no room to receive the upload'],
  )
  async upload(@Req() req: Request): Promise<{ files: AcceptedUpload[] }> {
    return { files: await this.uploads.receive(req, req.user!.id) };
  }
}
