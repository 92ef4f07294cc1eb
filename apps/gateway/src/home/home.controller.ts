import { Controller, Get, Inject, Req, Res, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { type FileEntity, FileRepository, TESS_CONFIG, type TessConfig } from '#common';
import { PageAuthGuard } from '../auth/page-auth.guard.js';
import { csrfToken } from '../http/csrf.js';
import { formatBytes } from '../http/views.js';
import { TokensService } from '../tokens/tokens.service.js';
import { UsageService } from '../usage/usage.service.js';

/** Rows per page in "My files", server-rendered and for every "Load more" after it. */
export const FILES_PAGE_SIZE = 25;

/** A readable UTC time for the first paint; the dashboard script rewrites it in the user's time zone. */
export function utcLabel(date: Date | null | undefined): string {
  if (!date) return '';
  return `${new Date(date).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function shortHash(hash: string | null | undefined): string {
  return hash ? `${hash.slice(0, 12)}…` : '';
}

/**
 * What a row of "My files" needs. The same partial (views/partials/file_row.hbs) renders these rows on
 * the server and, empty, the <template> the dashboard script fills for rows it adds later.
 */
export function fileRow(file: FileEntity, twin?: Pick<FileEntity, 'id' | 'filename' | 'createdAt'>) {
  return {
    duplicateName: twin?.filename ?? '',
    duplicateId: twin?.id ?? '',
    duplicateIso: twin ? new Date(twin.createdAt).toISOString() : '',
    duplicateLabel: twin ? utcLabel(twin.createdAt) : '',
    id: file.id,
    filename: file.filename,
    status: file.status,
    contentType: file.contentType,
    detectedType: file.detectedType ?? '',
    typeWarning: file.typeWarning ?? '',
    sizeLabel: formatBytes(file.size),
    sizeBytes: file.size,
    createdIso: new Date(file.createdAt).toISOString(),
    createdLabel: utcLabel(file.createdAt),
    storedIso: file.storedAt ? new Date(file.storedAt).toISOString() : '',
    storedLabel: utcLabel(file.storedAt),
    sha256: file.sha256 ?? '',
    sha256Short: shortHash(file.sha256),
    sha1: file.sha1 ?? '',
    sha1Short: shortHash(file.sha1),
    error: file.status === 'stored' ? '' : (file.error ?? ''),
    canDownload: file.status === 'stored',
    canVerify: file.status === 'stored' || file.status === 'corrupt',
    clientVerified: file.clientVerified === true,
    version: file.version,
    versionCount: file.versionCount,
    hasVersions: file.versionCount > 0,
  };
}

@ApiExcludeController()
@Controller()
@UseGuards(PageAuthGuard)
export class HomeController {
  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
    private readonly tokens: TokensService,
    private readonly usage: UsageService,
  ) {}

  @Get('home')
  async home(@Req() req: Request, @Res() res: Response): Promise<void> {
    const user = req.user!;
    const [page, tokens, usage] = await Promise.all([
      // The first paint is the root folder, newest first; the dashboard script navigates from there.
      this.files.listPage(user.id, {
        folderId: null,
        sort: 'createdAt',
        order: 'desc',
        limit: FILES_PAGE_SIZE,
      }),
      this.tokens.list(user.id),
      this.usage.of(user.id),
    ]);
    const twins = await this.files.twinsOf(user.id, page.items);
    const flash = req.session.flash;
    if (flash) delete req.session.flash;
    const { maxFileSize } = this.config.uploads;
    // Rendered pages carry the CSRF token and the user's file list: never cache them.
    res.setHeader('Cache-Control', 'private, no-store');
    res.render('pages/home', {
      title: 'My files',
      user,
      flash,
      csrfToken: csrfToken(req),
      files: page.items.map((f) => fileRow(f, twins.get(f.id))),
      hasFiles: page.items.length > 0,
      nextCursor: page.nextCursor ?? '',
      pageSize: FILES_PAGE_SIZE,
      maxFileSize,
      maxFileSizeLabel: formatBytes(maxFileSize),
      shareMaxExpiryMs: this.config.shares.maxExpiryMs,
      tusChunkSize: this.config.tus.chunkSize,
      usage,
      emptyRow: {},
      tokens,
      scripts: ['/assets/tus-js-client/tus.min.js'],
      modules: ['/static/js/dashboard.js'],
    });
  }
}
