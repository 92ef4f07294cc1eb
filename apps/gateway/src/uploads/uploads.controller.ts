import { Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import type { Request } from 'express';
import { ApiAuthGuard } from '../auth/api-auth.guard.js';
import { type AcceptedUpload, UploadsService } from './uploads.service.js';

@Controller('api/v1/uploads')
@UseGuards(ApiAuthGuard)
export class UploadsController {
  constructor(private readonly uploads: UploadsService) {}

  /** multipart/form-data with one or more `file` fields -> 202 and one queued job per file. */
  @Post()
  @HttpCode(202)
  async upload(@Req() req: Request): Promise<{ files: AcceptedUpload[] }> {
    return { files: await this.uploads.receive(req, req.user!.id) };
  }
}
