import { randomUUID } from 'node:crypto';
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  BadRequestException,
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  Logger,
  PayloadTooLargeException,
  ServiceUnavailableException,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import busboy from 'busboy';
import type { Request } from 'express';
import {
  AuditRepository,
  type ConfiguredKeyProvider,
  effectiveQuota,
  type FileEntity,
  FileRepository,
  type FollowHint,
  KEY_PROVIDER,
  StagingWriter,
  TESS_CONFIG,
  type TessConfig,
  TessMetrics,
  TypePolicy,
  type UserEntity,
  UserRepository,
  type WrappedDataKey,
} from '#common';
import { AccessPolicy } from '../access/access.policy.js';
import { EventsGateway } from '../events/events.gateway.js';
import { ClientAbortedError } from '../http/client-aborted.error.js';
import { formatBytes } from '../http/views.js';
import { JobQueue } from '../infra/job-queue.js';
import { normalizeContentType, storedFilename } from './filename.js';

const MiB = 1024 * 1024;
/** A multipart upload's staging is written back every 8 MiB while it arrives, one fdatasync at a time. */
const MULTIPART_SYNC_AHEAD = 8 * MiB;

export interface AcceptedUpload {
  id: string;
  filename: string;
  size: number;
  status: 'queued';
  jobId: string;
}

interface ReceivedFile {
  id: string;
  path: string;
  filename: string;
  contentType: string;
  size: number;
  /** Set once the key provider created the file's data key (per-file-secret: a secret to remove on failure). */
  wrapped?: WrappedDataKey;
  /** The SHA-256 the client declared in a `sha256` field before this file part (checked by the worker). */
  clientSha256: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The target folder an upload names (the multipart `folderId` field, tus `Upload-Metadata` `folderId`):
 * absent, empty or `root` is the root; anything but a folder id is a 400 naming `where`.
 */
export function uploadFolderId(value: string | undefined, where: string): string | null {
  if (value === undefined || value === '' || value === 'root') return null;
  if (!UUID.test(value)) throw new BadRequestException(`${where} must be a folder id (or root).`);
  return value.toLowerCase();
}

/** A client-declared SHA-256: 64 hexadecimal characters (either case; stored lower-case). */
export const SHA256_HEX = /^[0-9a-f]{64}$/i;

/** The key service (Secrets Manager, or the master key file) could not give a data key. */
export class DataKeyUnavailable extends ServiceUnavailableException {
  constructor() {
    super('The key service is unavailable right now; nothing was stored. Try again in a moment.');
  }
}

/** What a failed write of an upload means for the client: 507 when the temp volume is full, else 500. */
export function writeError(error: unknown): HttpException {
  const code = (error as { code?: string }).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new HttpException(
      'The server has no room left to receive this upload right now. Try again later or contact the operator.',
      HttpStatus.INSUFFICIENT_STORAGE,
    );
  }
  return new HttpException(
    'The upload could not be written on the server.',
    HttpStatus.INTERNAL_SERVER_ERROR,
  );
}

/**
 * The end of a refusal: a request is stored whole or not at all, so the files that came before the bad
 * one (named, a few at most) were not stored either and must be sent again without it.
 */
export function nothingStored(others: ReadonlyArray<{ filename: string }>): string {
  if (others.length === 0) return 'nothing from this request was stored.';
  const named = others.slice(0, 3).map((f) => `"${f.filename}"`);
  const more = others.length > named.length ? ` and ${others.length - named.length} more` : '';
  const them = others.length === 1 ? 'it' : 'them';
  return (
    `nothing from this request was stored, not ${named.join(', ')}${more} either ` +
    `(a request is stored whole or not at all): send ${them} again without this file.`
  );
}

/**
 * Receives multipart uploads: every `file` part is encrypted while it streams into `TEMP_DIR/<uuid>` as a
 * staging file (libs/common/src/staging, docs/format.md "Staging format": authenticated 1 MiB records under
 * the file's fresh data key, which the key provider wraps into the row), so no plaintext byte of an upload
 * ever reaches the disk. busboy, 1 MiB buffers, never a whole file in memory, the size limit enforced while
 * streaming. A `sha256` form field before a `file` part declares that file's SHA-256 (64 hex characters);
 * the worker checks it against the plaintext (`client-hash-mismatch` on a difference). Only when
 * the whole request arrived intact does it record `files` rows and enqueue one `encrypt-file` job per
 * file (jobId = fileId). Any failure (oversize, malformed body, client abort, full disk, Redis down)
 * removes the temp files and leaves no row and no job behind. Used by the REST API and the dashboard.
 */
@Injectable()
export class UploadsService {
  private readonly logger = new Logger(UploadsService.name);
  /** The type policy on what the client says (name, declared type); the worker checks the content. */
  private readonly typePolicy: TypePolicy;

  constructor(
    @Inject(TESS_CONFIG) private readonly config: TessConfig,
    private readonly files: FileRepository,
    private readonly users: UserRepository,
    private readonly audit: AuditRepository,
    private readonly jobs: JobQueue,
    private readonly metrics: TessMetrics,
    @Inject(KEY_PROVIDER) private readonly keys: ConfiguredKeyProvider,
    private readonly events: EventsGateway,
    private readonly access: AccessPolicy,
  ) {
    this.typePolicy = new TypePolicy(config.content);
  }

  /**
   * `versionOf`: the request is a new version of that file (POST /api/v1/files/:id/versions): exactly one
   * `file` part, an upload row with `version_of` set (never listed as a file of its own, not counted as
   * one against QUOTA_FILES, its bytes counted), and no `file:created` event (the file already has its row).
   */
  async receive(
    req: Request,
    ownerId: string,
    options: { versionOf?: Pick<FileEntity, 'id' | 'filename'> } = {},
  ): Promise<AcceptedUpload[]> {
    const { versionOf } = options;
    if (!req.is('multipart/form-data')) {
      throw new UnsupportedMediaTypeException(
        versionOf
          ? 'Send the new version as multipart/form-data in one "file" field.'
          : 'Send files as multipart/form-data in one or more "file" fields.',
      );
    }
    await mkdir(this.config.tempDir, { recursive: true, mode: 0o700 });
    const { files: received, folderId } = await this.streamToTemp(req, ownerId);
    try {
      if (versionOf && received.length !== 1) {
        throw new BadRequestException(
          `A new version is one file; this request had ${received.length}. Nothing was stored.`,
        );
      }
      await this.targetFolder(ownerId, folderId);
      const known = req.user?.id === ownerId ? req.user.quota : undefined;
      await this.enforceQuota(ownerId, received, versionOf ? 0 : received.length, known);
      const rows = await this.files.createQueuedMany(
        received.map((file) => ({
          folderId,
          id: file.id,
          ownerId,
          versionOf: versionOf?.id ?? null,
          // A version keeps its file's name (the name is the file's, not the version's).
          filename: versionOf?.filename ?? file.filename,
          contentType: file.contentType,
          size: file.size,
          tempPath: file.id,
          keyRef: file.wrapped!.keyRef,
          wrappedKey: file.wrapped!.wrappedKey.length ? file.wrapped!.wrappedKey : null,
          clientSha256: file.clientSha256,
        })),
      );
      // A name already used in the folder got a number ("report (2).pdf"): keep both.
      rows.forEach((row, i) => {
        received[i]!.filename = row.filename;
      });
      await this.enqueue(ownerId, received);
    } catch (error) {
      await Promise.all(received.map((f) => this.files.delete(f.id).catch(() => undefined)));
      await this.discard(received);
      throw error;
    }
    for (const file of received) this.metrics.uploadFileBytes.observe(file.size);
    try {
      // Recorded together: the audit trail writes events of the same moment in one transaction.
      await Promise.all(
        received.map((file) =>
          this.audit.record({
            action: 'upload.accepted',
            userId: ownerId,
            fileId: versionOf?.id ?? file.id,
            ip: req.ip,
            details: {
              filename: file.filename,
              size: file.size,
              ...(versionOf ? { newVersion: true, upload: file.id } : {}),
            },
          }),
        ),
      );
    } catch (error) {
      // The files are queued and will be stored: answering 503 now would make the client upload them
      // twice. Their `file.stored` events still follow; this request's `upload.accepted` ones are lost.
      this.logger.error(
        `Accepted ${received.length} upload(s) but could not audit them: ${(error as Error).message}`,
      );
    }
    if (versionOf)
      return received.map((f) => ({
        id: f.id,
        filename: versionOf.filename,
        size: f.size,
        status: 'queued',
        jobId: f.id,
      }));
    this.announce(ownerId, received);
    return received.map((f) => ({
      id: f.id,
      filename: f.filename,
      size: f.size,
      status: 'queued',
      jobId: f.id,
    }));
  }

  /** `file:created` to every open dashboard of the owner, on every replica: files just accepted (queued). */
  announce(ownerId: string, files: ReadonlyArray<Pick<FileEntity, 'id' | 'filename' | 'size'>>): void {
    this.events.filesCreated(
      ownerId,
      files.map((f) => ({ fileId: f.id, filename: f.filename, size: f.size })),
    );
  }

  /** One `encrypt-file` job per file (job id = file id, so a repeated enqueue is a no-op); 503 if Redis fails. */
  async enqueue(ownerId: string, files: ReadonlyArray<{ id: string }>): Promise<void> {
    try {
      await this.jobs.enqueueMany(
        files.map((f) => ({
          name: 'encrypt-file',
          payload: { fileId: f.id, ownerId },
          opts: { jobId: f.id },
        })),
      );
    } catch (error) {
      this.logger.error(`Could not enqueue ${files.length} upload(s): ${(error as Error).message}`);
      throw new ServiceUnavailableException(
        'The processing queue is unavailable right now; nothing was stored. Try again in a moment.',
      );
    }
  }

  /** 404 unless the upload's target folder (null: the root) is the owner's. */
  async targetFolder(ownerId: string, folderId: string | null): Promise<void> {
    if (folderId) await this.access.ownersFolder(ownerId, folderId);
  }

  /** 415 naming the rule when a name or declared type is obviously blocked: before a byte is stored. */
  refuseDeclared(filename: string, contentType: string): void {
    const violation = this.typePolicy.checkDeclared(filename, contentType);
    if (violation) throw new UnsupportedMediaTypeException(violation.message);
  }

  /**
   * 409 (file count) or 413 (bytes) when `files` would take the owner over a quota; `newFiles` of them are
   * new files (a new version adds bytes, not a file). `overrides`: the owner's own quotas as this request
   * already read them (Express.User.quota), else they are looked up.
   */
  async enforceQuota(
    ownerId: string,
    files: ReadonlyArray<{ size: number }>,
    newFiles = files.length,
    overrides?: Pick<UserEntity, 'quotaBytes' | 'quotaFiles'>,
  ): Promise<void> {
    // The user's own overrides (set by an admin), else QUOTA_BYTES / QUOTA_FILES: read on every upload.
    const { quotaBytes, quotaFiles } = effectiveQuota(
      overrides ?? (await this.users.quotaOverrides(ownerId)),
      this.config.uploads,
    );
    if (!quotaBytes && !quotaFiles) return;
    const usage = await this.files.usage(ownerId);
    const bytes = files.reduce((sum, f) => sum + f.size, 0);
    if (quotaFiles && newFiles > 0 && usage.files + newFiles > quotaFiles) {
      throw new HttpException(
        `This upload would exceed your quota of ${quotaFiles} files (you have ${usage.files}). Delete some files first.`,
        HttpStatus.CONFLICT,
      );
    }
    if (quotaBytes && usage.bytes + bytes > quotaBytes) {
      throw new PayloadTooLargeException(
        `This upload would exceed your storage quota of ${formatBytes(quotaBytes)} ` +
          `(used ${formatBytes(usage.bytes)}, upload ${formatBytes(bytes)}). Delete some files first.`,
      );
    }
  }

  /** Removes what a refused upload left: its staging files, and its data keys where they are secrets. */
  private async discard(files: ReceivedFile[]): Promise<void> {
    await Promise.all(
      files.map(async (f) => {
        await unlink(f.path).catch(() => undefined);
        if (f.wrapped) {
          await this.keys.destroyDataKey(f.id, f.wrapped).catch((error: Error) => {
            this.logger.warn(`Could not remove the data key of refused upload ${f.id}: ${error.message}`);
          });
        }
      }),
    );
  }

  /** A fresh data key for a new upload; the caller gets the key, `entry` keeps the wrapped form. */
  private async dataKeyFor(entry: ReceivedFile): Promise<Buffer> {
    try {
      const { dataKey, ...wrapped } = await this.keys.createDataKey(entry.id);
      entry.wrapped = wrapped;
      return dataKey;
    } catch (error) {
      this.logger.error(`Could not create a data key for an upload: ${(error as Error).message}`);
      throw new DataKeyUnavailable();
    }
  }

  /** Whether an upload of (at most) `size` bytes is followed while it arrives (PIPELINE_MIN_BYTES). */
  pipelined(size: number): boolean {
    const { minBytes } = this.config.pipeline;
    return minBytes > 0 && Number.isSafeInteger(size) && size >= minBytes;
  }

  /**
   * Starts a follower on an upload that is still arriving (docs/security.md item 40; a no-op while one
   * runs). Best effort: without a follower the upload goes the normal way, so a failure is only logged.
   */
  follow(fileId: string, ownerId: string, hint?: FollowHint): void {
    this.jobs.follow(fileId, ownerId, hint).catch((error: Error) => {
      this.logger.warn(`Could not start a follower on upload ${fileId}: ${error.message}`);
    });
  }

  /**
   * A multipart file part gets its row only at the end of the request, so its follower learns the wrapped
   * key from the follow hint; called once the staging header is written and the key known.
   */
  private followPart(entry: ReceivedFile, ownerId: string, declaredSize: number): void {
    const { keyRef, wrappedKey } = entry.wrapped!;
    this.follow(entry.id, ownerId, {
      ownerId,
      keyRef,
      wrappedKey: wrappedKey.toString('base64'),
      declaredSize,
    });
  }

  private streamToTemp(
    req: Request,
    ownerId: string,
  ): Promise<{ files: ReceivedFile[]; folderId: string | null }> {
    const { maxFileSize, maxFilesPerRequest } = this.config.uploads;
    // The request's length bounds each of its files: large enough, and its parts are followed as they arrive.
    const declaredSize = Math.min(Number(req.headers['content-length'] ?? 0), maxFileSize);
    const pipelined = this.pipelined(declaredSize);
    return new Promise((resolve, reject) => {
      const files: ReceivedFile[] = [];
      const writes: Promise<void>[] = [];
      const sources: Readable[] = [];
      let failure: Error | null = null;
      /** A `sha256` field waiting for the `file` part it describes. */
      let declared: string | null = null;
      /** The `folderId` field: the folder every file of the request goes into (null: the root). */
      let folderId: string | null = null;

      const fail = (error: Error) => {
        if (failure) return;
        failure = error;
        req.unpipe(parser);
        // Parts still streaming will never see their end now: stop them so their writes settle.
        // Destroy *with* an error: a part that already pushed its end but was not fully read would
        // otherwise leave pipeline() waiting for an 'end' event that never comes.
        for (const source of sources) source.destroy(error);
        if (!(error instanceof ClientAbortedError)) drainAndClose(req);
        // Wait for open writes to stop before unlinking so no file is left behind.
        void Promise.allSettled(writes)
          .then(() => this.discard(files))
          .finally(() => reject(error));
      };

      let parser: busboy.Busboy;
      try {
        parser = busboy({
          headers: req.headers,
          defParamCharset: 'utf8',
          highWaterMark: MiB,
          fileHwm: MiB,
          limits: {
            // busboy reports 'limit' when a file *reaches* the limit, so allow one byte more and
            // treat reaching it as "over": a file of exactly MAX_FILE_SIZE is accepted.
            fileSize: maxFileSize + 1,
            files: maxFilesPerRequest,
            fields: 20,
            fieldSize: 4096,
            parts: maxFilesPerRequest + 20,
            headerPairs: 50,
          },
        });
      } catch (error) {
        reject(new BadRequestException(`Malformed multipart request: ${(error as Error).message}.`));
        return;
      }

      parser.on('field', (field, value) => {
        if (failure) return;
        if (field === 'folderId') {
          try {
            folderId = uploadFolderId(value, 'The "folderId" field');
          } catch (error) {
            fail(error as Error);
          }
          return;
        }
        if (field !== 'sha256') return;
        if (declared !== null) {
          fail(new BadRequestException('Two "sha256" fields in a row; send one before each "file" part.'));
        } else if (!SHA256_HEX.test(value)) {
          fail(new BadRequestException('The "sha256" field must be 64 hexadecimal characters.'));
        } else {
          declared = value.toLowerCase();
        }
      });

      parser.on('file', (field, stream, info) => {
        if (failure) {
          stream.resume();
          return;
        }
        if (field !== 'file') {
          stream.resume();
          fail(
            new BadRequestException(
              `Unexpected file field "${field.slice(0, 40)}"; send files in "file" fields.`,
            ),
          );
          return;
        }
        const filename = storedFilename(info.filename);
        const contentType = normalizeContentType(info.mimeType);
        try {
          this.refuseDeclared(filename, contentType);
        } catch (error) {
          stream.resume();
          fail(error as Error);
          return;
        }
        const id = randomUUID();
        const entry: ReceivedFile = {
          id,
          path: join(this.config.tempDir, id),
          filename,
          contentType,
          size: 0,
          clientSha256: declared,
        };
        declared = null;
        files.push(entry);
        sources.push(stream);
        stream.on('limit', () =>
          fail(
            new PayloadTooLargeException(
              `"${entry.filename}" is larger than the ${formatBytes(maxFileSize)} limit (${maxFileSize} bytes); ` +
                nothingStored(files.filter((f) => f !== entry)),
            ),
          ),
        );
        const dataKey = this.dataKeyFor(entry);
        dataKey.catch(() => undefined);
        // Written back while it arrives (StagingWriter syncAhead), so the fsync before the 202 has only the
        // last few MiB left rather than the whole file (0.7 s for 512 MiB here, docs/benchmarks.md).
        const out = StagingWriter.create({
          path: entry.path,
          fileId: id,
          dataKey,
          syncAhead: MULTIPART_SYNC_AHEAD,
        });
        // The writer keeps only keys derived from the data key: wipe it once the file is open.
        out.once('ready', () => {
          void dataKey.then((key) => key.fill(0));
          if (pipelined && !failure) this.followPart(entry, ownerId, declaredSize);
        });
        // Registered before piping starts: busboy may emit 'limit' (and we may fail) synchronously
        // while pipeline() is still wiring the streams up.
        let settled!: () => void;
        writes.push(new Promise<void>((resolve) => (settled = resolve)));
        pipeline(stream, out)
          .then(
            () => {
              entry.size = out.plaintextBytes;
            },
            (error: unknown) =>
              fail(failure ?? (error instanceof DataKeyUnavailable ? error : writeError(error))),
          )
          .finally(() => {
            void dataKey.then(
              (key) => key.fill(0),
              () => undefined,
            );
            settled();
          });
      });
      parser.on('filesLimit', () =>
        fail(
          new PayloadTooLargeException(
            `At most ${maxFilesPerRequest} files per request; nothing from this request was stored.`,
          ),
        ),
      );
      parser.on('error', (error: Error) =>
        fail(new BadRequestException(`Malformed multipart request: ${error.message}.`)),
      );
      parser.on('close', () => {
        void Promise.allSettled(writes).then(() => {
          if (failure) return;
          if (files.length === 0) {
            fail(new BadRequestException('No file in the request: send one or more "file" fields.'));
            return;
          }
          if (declared !== null) {
            fail(new BadRequestException('A "sha256" field must come before the "file" part it describes.'));
            return;
          }
          resolve({ files, folderId });
        });
      });
      req.on('close', () => {
        if (!req.complete) fail(new ClientAbortedError());
      });
      req.pipe(parser);
    });
  }
}

/**
 * After refusing an upload early, read (and discard) what the client is still sending for a short
 * while so it can see the answer, then close the connection.
 */
function drainAndClose(req: Request): void {
  req.res?.setHeader('Connection', 'close');
  req.resume();
  const timer = setTimeout(() => req.socket.destroy(), 5_000);
  timer.unref();
  req.on('end', () => clearTimeout(timer));
}
