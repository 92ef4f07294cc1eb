import type { Readable } from 'node:stream';
import { ConflictException, Injectable, Logger, NotFoundException } from '@nestjs/common';
import { create as contentDisposition } from 'content-disposition';
import type { Request, Response } from 'express';
import { ZipFile } from 'yazl';
import { AuditRepository, type FileEntity, FileRepository, isIntegrityFailure, numberedName } from '#common';
import { FileReader } from '../downloads/file-reader.service.js';
import { FilesService } from './files.service.js';

/** The most ids one bulk call takes (bulk delete and the ZIP download). */
export const MAX_BULK_IDS = 1000;

export type BulkDeleteStatus = 'deleted' | 'not_found' | 'failed';
export interface BulkDeleteResult {
  id: string;
  status: BulkDeleteStatus;
  error?: string;
}

/** How many files of a bulk delete are removed at a time (each is a few queries and an object delete). */
const DELETE_PARALLELISM = 4;

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point.
const UNSAFE_IN_ZIP = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

/**
 * A ZIP entry name from a display name: never a path (no `/`, `\`, drive letter or `..` can survive, so
 * nothing extracts outside the target directory: zip-slip), no control or bidi characters, no leading
 * dots (no hidden files), and unique in the archive case-insensitively (`name (2).ext`), since unzip
 * tools on case-insensitive file systems would otherwise overwrite one file with another.
 */
export function zipEntryNames(names: readonly string[]): string[] {
  const used = new Set<string>();
  return names.map((raw) => {
    const flat =
      raw
        .replace(UNSAFE_IN_ZIP, '')
        .replace(/[\\/:]/g, '_')
        .replace(/^[.\s]+/, '')
        .trim() || 'unnamed';
    for (let n = 1; ; n++) {
      const name = numberedName(flat, n);
      if (!used.has(name.toLowerCase())) {
        used.add(name.toLowerCase());
        return name;
      }
    }
  });
}

/** Bulk actions on a user's files: delete many, download many as one ZIP of verified plaintexts. */
@Injectable()
export class BulkFilesService {
  private readonly logger = new Logger(BulkFilesService.name);

  constructor(
    private readonly files: FileRepository,
    private readonly service: FilesService,
    private readonly reader: FileReader,
    private readonly audit: AuditRepository,
  ) {}

  /**
   * Deletes each of the owner's files among `ids` through the one deletion path (FilesService.delete:
   * share links, row, job, object, key, audit) and reports every id: `deleted`, `not_found` (missing or
   * another user's, which look the same) or `failed` with the reason; one failure never stops the rest.
   */
  async delete(ownerId: string, ids: string[], ip?: string): Promise<BulkDeleteResult[]> {
    const owned = new Map((await this.files.findOwnedMany(ownerId, ids)).map((f) => [f.id, f]));
    const results: BulkDeleteResult[] = ids.map((id) => ({
      id,
      status: owned.has(id) ? 'deleted' : 'not_found',
    }));
    const todo = results.filter((r) => r.status === 'deleted');
    const work = async () => {
      for (let next = todo.shift(); next; next = todo.shift()) {
        const result = next;
        try {
          await this.service.delete(owned.get(result.id)!, ip);
        } catch (error) {
          this.logger.error(`bulk delete of file ${result.id} failed: ${(error as Error).message}`);
          result.status = 'failed';
          result.error = 'The file could not be deleted right now; try again.';
        }
      }
    };
    await Promise.all(Array.from({ length: DELETE_PARALLELISM }, work));
    return results;
  }

  /**
   * Streams a ZIP (stored, not compressed: the CPU goes to decryption) of the verified plaintexts, one
   * file at a time through the read pipeline, so memory stays at about a segment whatever the sizes.
   * Every id must be the owner's (else 404) and stored (else 409), checked before a byte is sent. A file
   * that fails verification midway marks it corrupt (FileReader) and destroys the response: the archive
   * has no central directory, so every unzip tool refuses it rather than hand out bad bytes; the event
   * is audited (`files.archive_aborted`).
   */
  async sendZip(ownerId: string, ids: string[], req: Request, res: Response): Promise<void> {
    const owned = new Map((await this.files.findOwnedMany(ownerId, ids)).map((f) => [f.id, f]));
    const missing = ids.filter((id) => !owned.has(id)).length;
    if (missing)
      throw new NotFoundException(`${missing} of the ${ids.length} files do not exist (or are not yours).`);
    const files = ids.map((id) => owned.get(id)!);
    const unready = files.filter((f) => f.status !== 'stored');
    if (unready.length) {
      const named = unready.slice(0, 3).map((f) => `"${f.filename}" (${f.status})`);
      throw new ConflictException(
        `Only stored files can be downloaded; not ${named.join(', ')}${unready.length > 3 ? ` and ${unready.length - 3} more` : ''}.`,
      );
    }
    const names = zipEntryNames(files.map((f) => f.filename));
    const zip = new ZipFile();
    let failed = false;
    let current: Readable | undefined;
    const abort = (file: FileEntity, error: Error) => {
      if (failed) return;
      failed = true;
      current?.destroy();
      res.destroy(error);
      if (!isIntegrityFailure(error)) return;
      void this.audit
        .record({
          action: 'files.archive_aborted',
          userId: ownerId,
          fileId: file.id,
          ip: req.ip,
          details: { filename: file.filename, files: files.length, error: error.message.slice(0, 500) },
        })
        .catch((e: Error) => this.logger.error(`could not audit an aborted ZIP: ${e.message}`));
    };
    files.forEach((file, i) => {
      zip.addReadStreamLazy(
        names[i]!,
        { mtime: file.createdAt, compress: false, size: file.size },
        (done) => {
          if (failed) return;
          this.reader.open(file, undefined, req.ip).then(
            (opened) => {
              current = opened.stream;
              opened.stream.once('error', (error: Error) => {
                if (isIntegrityFailure(error)) {
                  void this.reader.markCorrupt(file, error, req.ip).finally(() => abort(file, error));
                } else abort(file, error);
              });
              done(null, opened.stream);
            },
            (error: Error) => abort(file, error),
          );
        },
      );
    });
    zip.end();
    zip.on('error', (error: Error) => abort(files[0]!, error));
    res.status(200);
    res.setHeader('Content-Type', 'application/zip');
    res.setHeader(
      'Content-Disposition',
      contentDisposition(`tess-${files.length}-files.zip`, { type: 'attachment' }),
    );
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', 'private, no-store');
    res.on('close', () => {
      if (!res.writableFinished && !failed) {
        failed = true;
        current?.destroy();
      }
    });
    zip.outputStream.pipe(res);
    zip.outputStream.once('end', () => {
      if (failed) return;
      void this.audit
        .record({
          action: 'files.archive_downloaded',
          userId: ownerId,
          ip: req.ip,
          details: { files: files.length, bytes: files.reduce((sum, f) => sum + f.size, 0) },
        })
        .catch((e: Error) => this.logger.error(`could not audit a ZIP download: ${e.message}`));
    });
  }
}
