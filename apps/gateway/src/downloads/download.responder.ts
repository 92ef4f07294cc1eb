import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpException, HttpStatus, Injectable } from '@nestjs/common';
import { create as contentDisposition } from 'content-disposition';
import type { Request, Response } from 'express';
import {
  type AuditAction,
  type AuditRecord,
  AuditRepository,
  type ByteRange,
  type FileEntity,
  isIntegrityFailure,
  type OpenedObject,
} from '#common';
import { answerNotModified, entityTag, notModified, rangeStillValid } from './conditional.js';
import { servedContentType } from './download-content-type.js';
import { rangeRequest } from './download-range.js';
import { FileReader } from './file-reader.service.js';
import { releasingSink } from './releasing-sink.js';

/** The audit event a caller wants written for a full download (ranged reads are not audited). */
export interface DownloadAudit {
  action: AuditAction;
  userId: string | null;
  details?: AuditRecord['details'];
}

/** How a route wants the protocol bent (the owner's download takes the defaults). */
export interface DownloadOptions {
  /**
   * False: `Range` and `If-Range` are ignored and every answer is the whole file, with
   * `Accept-Ranges: none` (share links with a download limit, so a partial read can neither use up nor
   * dodge the count). Default true.
   */
  ranges?: boolean;
}

/** How a download ended, once its response is over. */
export interface DownloadOutcome {
  /** 200 for the whole file, 206 for a range, 304 when the client's copy is current. */
  status: 200 | 206 | 304;
  /**
   * `complete`: the whole body was handed to the socket. `corrupt`: an integrity failure cut the
   * connection (the file is marked corrupt). `cut`: the client went away or the store failed midway.
   * `none`: a 304, no body.
   */
  body: 'complete' | 'corrupt' | 'cut' | 'none';
}

/**
 * The download protocol, for any route that has already decided the file may be read: parses one
 * `Range`, opens verified plaintext, reads up to the first verified chunk before any header goes out
 * (so an integrity failure of the header, the key or the first segments is a clean 502 JSON, while
 * a later one cuts the connection and the client never sees a complete body), writes the headers
 * (RFC 6266/5987 attachment name, ETag = SHA-256, nosniff, no-store), audits a full download with the
 * caller's event and streams. Errors before the headers are thrown as HttpExceptions (409 not stored,
 * 416 range outside the file, 502 integrity); afterwards the returned outcome tells how it ended.
 */
@Injectable()
export class DownloadResponder {
  constructor(
    private readonly reader: FileReader,
    private readonly audit: AuditRepository,
  ) {}

  /**
   * Answers `req` with `file`, which the caller's access check already allowed. Resolves once the
   * response is over; rejects (before any header) with the HttpException the error filter renders.
   * `audit` null: the caller audits the outcome itself (share links record completed downloads only).
   */
  async send(
    file: FileEntity,
    req: Request,
    res: Response,
    audit: DownloadAudit | null,
    options: DownloadOptions = {},
  ): Promise<DownloadOutcome> {
    const ranges = options.ranges ?? true;
    const etag = file.status === 'stored' ? entityTag(file.sha256) : undefined;
    if (etag && notModified(req, etag)) return answerNotModified(res, etag);
    const range = ranges && rangeStillValid(req, etag) ? this.requestedRange(file, req, res) : undefined;
    const { opened, iterator, first } = await this.openFirstChunk(file, range, req.ip);
    writeHeaders(res, file, opened, range, ranges);
    if (!range && audit) {
      await this.audit.record({
        ...audit,
        fileId: file.id,
        ip: req.ip,
        details: { filename: file.filename, ...audit.details },
      });
    }
    const status = range ? 206 : 200;
    async function* body(): AsyncGenerator<Buffer> {
      if (!first.done) yield first.value;
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
    }
    try {
      await pipeline(Readable.from(body()), releasingSink(res));
      return { status, body: 'complete' };
    } catch (error) {
      const corrupt = isIntegrityFailure(error);
      if (corrupt) await this.reader.markCorrupt(file, error as Error, req.ip);
      res.destroy();
      return { status, body: corrupt ? 'corrupt' : 'cut' };
    }
  }

  /** The one range to serve, undefined for the whole file; 416 for a range outside it. */
  private requestedRange(file: FileEntity, req: Request, res: Response): ByteRange | undefined {
    // A file that is not stored gets its 409 from the reader, whatever the range.
    if (file.status !== 'stored') return undefined;
    const requested = rangeRequest(req, file.size);
    if (requested.kind === 'unsatisfiable') {
      res.setHeader('Content-Range', `bytes */${file.size}`);
      throw new HttpException(
        `The range is outside the file (${file.size} bytes).`,
        HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
      );
    }
    return requested.kind === 'range' ? requested.range : undefined;
  }

  private async openFirstChunk(
    file: FileEntity,
    range: ByteRange | undefined,
    ip: string | undefined,
  ): Promise<{ opened: OpenedObject; iterator: AsyncIterator<Buffer>; first: IteratorResult<Buffer> }> {
    let reading = false;
    try {
      const opened = await this.reader.open(file, range, ip);
      reading = true;
      const iterator: AsyncIterator<Buffer> = opened.stream[Symbol.asyncIterator]();
      const first = await iterator.next();
      return { opened, iterator, first };
    } catch (error) {
      if (isIntegrityFailure(error)) {
        // open() already marks the failures it finds itself; mark only those found while reading.
        if (reading) await this.reader.markCorrupt(file, error as Error, ip);
        throw new HttpException(
          'The stored object failed its integrity check; it has been marked corrupt and nothing was sent.',
          HttpStatus.BAD_GATEWAY,
        );
      }
      throw error;
    }
  }
}

function writeHeaders(
  res: Response,
  file: FileEntity,
  opened: OpenedObject,
  range: ByteRange | undefined,
  ranges: boolean,
): void {
  res.status(range ? 206 : 200);
  // The second argument is where a content-sniffed type goes once uploads record one.
  res.setHeader('Content-Type', servedContentType(file.contentType));
  res.setHeader('Content-Length', String(opened.end - opened.start + 1));
  res.setHeader('Content-Disposition', contentDisposition(file.filename, { type: 'attachment' }));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Accept-Ranges', ranges ? 'bytes' : 'none');
  res.setHeader('Cache-Control', 'private, no-store');
  const etag = entityTag(file.sha256);
  if (etag) res.setHeader('ETag', etag);
  if (range) res.setHeader('Content-Range', `bytes ${opened.start}-${opened.end}/${opened.size}`);
}
