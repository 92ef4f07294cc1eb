import type { Readable } from 'node:stream';
import type {
  CompletedPart,
  ListMultipartUploadsCommandOutput,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { releaseBuffer } from '../../util/release-buffer.js';
import { sdkAttempts } from '../../util/sdk-retry.strategy.js';
import type { ObjectStat, PutObjectOptions } from '../object-store.js';
import { abortReason, MiB, ProgressReporter, toBuffer } from '../object-store.util.js';
import { describeS3Error, isS3Error, readFailure, type S3Connection } from './s3.errors.js';
import { s3Sdk } from './s3.sdk.js';

/** S3 limits for multipart uploads. */
export const S3_MIN_PART_SIZE = 5 * MiB;
/**
 * TESS's part size unless configured (S3_PART_SIZE): 8 MiB (the AWS CLI's default chunk size) rather than
 * the 5 MiB minimum, so a 512 MiB object takes 65 UploadPart requests instead of 103. Memory is
 * partSize x (queueSize + 1) per upload: 40 MiB, 80 MiB per worker at concurrency 2. 16 MiB parts cut the
 * requests to 33 and CPU per 512 MiB a little more (bench/worker-pass.mjs into s3rver, side by side: worker
 * 1.87-2.07 -> 1.64-1.78 CPU-s, s3rver 3.58-4.21 -> 3.33-3.42), but put the worker over its 256 MiB peak
 * (`npm run bench`, 512 MiB on s3rver: worker peak 346 MiB with 16 MiB parts, 259 MiB with 8 MiB, at 0.62x
 * and 0.66x of a plain upload in their runs).
 */
export const S3_DEFAULT_PART_SIZE = 8 * MiB;
export const S3_MAX_PART_SIZE = 5 * 1024 * MiB;
export const S3_MAX_PARTS = 10_000;

/** A write that failed for good; the multipart upload was aborted unless `cleanupError` says otherwise. */
export class S3UploadError extends Error {
  constructor(
    message: string,
    readonly details: {
      key: string;
      bucket: string;
      stage: 'read-body' | 'put-object' | 'create' | 'upload-part' | 'complete' | 'abort';
      uploadId?: string;
      partNumber?: number;
      attempts?: number;
      cleanupError?: unknown;
    },
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = 'S3UploadError';
  }
}

type Stage = S3UploadError['details']['stage'];

/** Part size for an object of `size` bytes (when known): the configured one, grown to fit 10,000 parts. */
export function choosePartSize(partSize: number, size?: number): number {
  if (size === undefined || size <= partSize * S3_MAX_PARTS) return partSize;
  const grown = Math.ceil(Math.ceil(size / S3_MAX_PARTS) / MiB) * MiB;
  if (grown > S3_MAX_PART_SIZE) {
    throw new RangeError(`An object of ${size} bytes exceeds S3's limit of ${S3_MAX_PARTS} parts of 5 GiB`);
  }
  return grown;
}

/**
 * Reusable part buffers: at most queueSize + 1 exist per upload. In SharedArrayBuffers when another thread
 * hashes them (PutObjectOptions.sha256), so it reads them without a copy.
 */
class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(
    private readonly size: number,
    private readonly shared: boolean,
  ) {}
  take(): Buffer {
    return this.free.pop() ?? this.allocate(this.size);
  }
  /** A buffer of its own size, outside the pool, of the same kind. */
  allocate(size: number): Buffer {
    return this.shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafeSlow(size);
  }
  give(buffer: Buffer): void {
    this.free.push(buffer);
  }
}

/** Fills part buffers from a byte stream, whatever its chunk sizes. */
class PartReader {
  /** The unread rest of `whole`, the chunk the stream gave last. */
  private leftover: Buffer | null = null;
  private whole: Buffer | null = null;
  private ended = false;
  constructor(
    private readonly chunks: AsyncIterator<unknown>,
    /** Frees each chunk once it is wholly copied (PutObjectOptions.releaseChunks). */
    private readonly releaseChunks = false,
  ) {}

  get done(): boolean {
    return this.ended && this.leftover === null;
  }

  /** Copies up to `target.length` bytes into `target`; fewer only at the end of the stream. */
  async fill(target: Buffer): Promise<number> {
    let filled = 0;
    while (filled < target.length) {
      let chunk = this.leftover;
      this.leftover = null;
      if (chunk === null) {
        if (this.ended) break;
        const next = await this.chunks.next();
        if (next.done) {
          this.ended = true;
          break;
        }
        chunk = toBuffer(next.value);
        this.whole = chunk;
      }
      const copied = chunk.copy(target, filled);
      filled += copied;
      if (copied < chunk.length) this.leftover = chunk.subarray(copied);
      else if (this.releaseChunks && this.whole) {
        releaseBuffer(this.whole);
        this.whole = null;
      }
    }
    return filled;
  }
}

/** What SigV4 signs as a request body's SHA-256; the signer hashes the body itself only without it. */
const PAYLOAD_HASH_HEADER = 'x-amz-content-sha256';

/** What `presetPayloadHash` needs of a command's middleware stack (PutObject's and UploadPart's both fit). */
interface BuildStack {
  add(middleware: never, options: { step: 'build'; name: string }): void;
}

/**
 * Signs `hash` as the request body's SHA-256: the SDK's signer takes a preset x-amz-content-sha256 header as
 * the payload hash (@smithy/signature-v4 getPayloadHash) instead of hashing the body again on this thread,
 * and S3 verifies the body against it as before.
 */
function presetPayloadHash(stack: BuildStack, hash: string): void {
  const middleware =
    (next: (args: { request: unknown }) => Promise<unknown>) =>
    (args: { request: unknown }): Promise<unknown> => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers[PAYLOAD_HASH_HEADER] = hash;
      return next(args);
    };
  // The stack's own overloads type each step's handler by the command's input and output; this one reads
  // and sets only the serialized request's headers, whatever the command.
  stack.add(middleware as never, { step: 'build', name: 'tessPresetPayloadHash' });
}

/** `command`, signed with `bytes`' SHA-256 as PutObjectOptions.sha256 computes it (on a hash thread), if given. */
async function signedWith<C extends PutObjectCommand | UploadPartCommand>(
  command: C,
  bytes: Buffer,
  sha256: PutObjectOptions['sha256'],
): Promise<C> {
  if (sha256) presetPayloadHash(command.middlewareStack, await sha256(bytes));
  return command;
}

/** One upload's moving parts, handed from `put` to the multipart loop. */
interface Upload {
  key: string;
  reader: PartReader;
  partSize: number;
  pool: BufferPool;
  progress: ProgressReporter;
  /** Hashes part bodies off this thread (PutObjectOptions.sha256), when given. */
  sha256: PutObjectOptions['sha256'];
  /** Stops everything: the caller's abort, or the first part that fails for good. */
  stop: AbortController;
  /** The caller's signal. */
  signal: AbortSignal | undefined;
}

/**
 * Writes objects with the plain multipart API.
 *
 * `put` reads the body into part-size Buffers (Buffers, so the SDK signs them without re-reading a stream)
 * and uploads at most `queueSize` of them at a time, so memory stays at partSize x (queueSize + 1) however
 * large the object. On any failure or abort the multipart upload is aborted before the error is thrown, so
 * no billable parts are left behind. Bodies shorter than one part go in a single PutObject (also atomic);
 * a body of exactly one part or more uses multipart.
 *
 * Why not `@aws-sdk/lib-storage`'s `Upload`, for three needs it does not meet:
 * - a retried CompleteMultipartUpload whose first answer was lost answers NoSuchUpload although the object
 *   was committed; `Upload` fails then, this writer counts it a success once HeadObject shows the size;
 * - `put` rejects only after the multipart upload was aborted (or names the failed abort and how to clean
 *   up), so a caller that sees the error knows no billable parts are left; `Upload` gives no such order;
 * - `Upload` copies every part into a new buffer, this writer reuses queueSize + 1 of them per upload.
 */
export class S3MultipartWriter {
  constructor(
    private readonly s3: S3Connection,
    private readonly queueSize: number,
    private readonly stat: (key: string) => Promise<ObjectStat | null>,
  ) {}

  private get bucket(): string {
    return this.s3.bucket;
  }

  /** Writes `body` to `key` in parts of `partSize` bytes (the key is already validated). */
  async put(key: string, body: Readable, partSize: number, options: PutObjectOptions): Promise<ObjectStat> {
    const { signal } = options;
    const stop = new AbortController();
    const onAbort = (): void => {
      if (signal) stop.abort(abortReason(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const onStop = (): void => {
      body.destroy();
    };
    stop.signal.addEventListener('abort', onStop, { once: true });
    const upload: Upload = {
      key,
      reader: new PartReader(body[Symbol.asyncIterator](), options.releaseChunks),
      partSize,
      pool: new BufferPool(partSize, options.sha256 !== undefined),
      progress: new ProgressReporter(options.onProgress),
      sha256: options.sha256,
      stop,
      signal,
    };
    const { PutObjectCommand } = s3Sdk();
    try {
      const { first, firstLength } = await this.readFirstPart(upload, options.size);
      if (firstLength < partSize) {
        const bytes = first.subarray(0, firstLength);
        const command = new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: bytes,
          ContentLength: firstLength,
        });
        await signedWith(command, bytes, upload.sha256)
          .then((signed) => this.s3.client.send(signed, { abortSignal: stop.signal }))
          .catch((error: unknown) => {
            throw this.failure(error, signal, { key, stage: 'put-object' });
          });
        upload.progress.finish(firstLength);
        return { size: firstLength };
      }
      return await this.putMultipart(upload, first);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stop.signal.removeEventListener('abort', onStop);
      if (!upload.reader.done) body.destroy();
    }
  }

  private async putMultipart(upload: Upload, first: Buffer): Promise<ObjectStat> {
    const { key, partSize, pool, progress, stop, signal, sha256 } = upload;
    const { CreateMultipartUploadCommand, UploadPartCommand } = s3Sdk();
    // Not cancelled by the caller: a cancelled request may still create an upload whose id we would never
    // learn. An abort that arrives meanwhile is honoured right after, by aborting the upload by its id.
    const created = await this.s3.client
      .send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }))
      .catch((error: unknown) => {
        throw this.failure(error, signal, { key, stage: 'create' });
      });
    const uploadId = created.UploadId;
    if (!uploadId) {
      throw new S3UploadError(`S3 returned no UploadId for ${key}`, this.info(key, 'create'), null);
    }
    if (stop.signal.aborted) throw await this.abortAfterFailure(key, uploadId, stop.signal.reason, signal);

    const parts: CompletedPart[] = [];
    const inFlight = new Map<number, Promise<void>>();
    let failed: { partNumber: number; error: unknown } | undefined;
    let bytesDone = 0;
    let partNumber = 0;
    try {
      let buffer = first;
      let length = partSize;
      for (;;) {
        partNumber += 1;
        if (partNumber > S3_MAX_PARTS) {
          throw new RangeError(
            `The body needs more than ${S3_MAX_PARTS} parts of ${partSize} bytes; pass options.size or raise partSize`,
          );
        }
        const number = partNumber;
        const part = buffer;
        const bytes = length === part.length ? part : part.subarray(0, length);
        const command = new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: number,
          Body: bytes,
          ContentLength: bytes.length,
        });
        const task = signedWith(command, bytes, sha256)
          .then((signed) => this.s3.client.send(signed, { abortSignal: stop.signal }))
          .then((output) => {
            if (!output.ETag) throw new Error(`S3 returned no ETag for part ${number}`);
            parts.push({ PartNumber: number, ETag: output.ETag });
            bytesDone += bytes.length;
            pool.give(part);
            progress.update(bytesDone);
          })
          .catch((error: unknown) => {
            failed ??= { partNumber: number, error };
            stop.abort(error);
          })
          .finally(() => inFlight.delete(number));
        inFlight.set(number, task);
        if (length < partSize) break;
        while (inFlight.size >= this.queueSize && !failed) await Promise.race(inFlight.values());
        if (failed) break;
        buffer = pool.take();
        length = await this.readPart(upload, buffer, partNumber + 1);
        if (length === 0) break;
      }
      await Promise.all(inFlight.values());
      if (failed) throw failed.error;
      parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      // The commit point: an abort before it removes everything; Complete itself runs to the end, since a
      // cancelled Complete may still commit the object on the server.
      stop.signal.throwIfAborted();
      await this.complete(key, uploadId, parts, bytesDone).catch((error: unknown) => {
        throw this.failure(error, signal, { key, stage: 'complete', uploadId });
      });
      progress.finish(bytesDone);
      return { size: bytesDone };
    } catch (error) {
      stop.abort(error);
      await Promise.allSettled(inFlight.values());
      const cause =
        error instanceof S3UploadError || signal?.aborted
          ? error
          : failed
            ? this.failure(failed.error, signal, {
                key,
                stage: 'upload-part',
                uploadId,
                partNumber: failed.partNumber,
              })
            : error;
      throw await this.abortAfterFailure(key, uploadId, cause, signal);
    }
  }

  /**
   * Reads up to one part. A body that `size` says is smaller than a part gets a buffer of its size (one byte
   * more, to see it end) rather than a whole part: a fresh part buffer per small object is external memory V8
   * answers with full garbage collections. A body longer than its hint goes on in a whole part buffer.
   */
  private async readFirstPart(
    upload: Upload,
    size: number | undefined,
  ): Promise<{ first: Buffer; firstLength: number }> {
    const { partSize, pool } = upload;
    if (size === undefined || size + 1 >= partSize) {
      const first = pool.take();
      return { first, firstLength: await this.readPart(upload, first, 1) };
    }
    const small = pool.allocate(size + 1);
    const length = await this.readPart(upload, small, 1);
    if (length < small.length) return { first: small, firstLength: length };
    const first = pool.take();
    small.copy(first);
    return { first, firstLength: length + (await this.readPart(upload, first.subarray(length), 1)) };
  }

  /** Reads the next part; a read error names the part, an abort surfaces as the caller's reason. */
  private async readPart(upload: Upload, buffer: Buffer, partNumber: number): Promise<number> {
    try {
      return await upload.reader.fill(buffer);
    } catch (error) {
      if (upload.signal?.aborted) throw abortReason(upload.signal);
      if (upload.stop.signal.aborted) throw upload.stop.signal.reason;
      throw new S3UploadError(
        `Reading the body of ${upload.key} failed before part ${partNumber}: ${describeS3Error(error)}`,
        this.info(upload.key, 'read-body', { partNumber }),
        error,
      );
    }
  }

  /**
   * CompleteMultipartUpload, retried and never cancelled. A retry after a lost success answers NoSuchUpload:
   * the object then exists with the expected size, which counts as success.
   */
  private async complete(key: string, uploadId: string, parts: CompletedPart[], size: number): Promise<void> {
    const { CompleteMultipartUploadCommand } = s3Sdk();
    try {
      await this.s3.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
    } catch (error) {
      if (sdkAttempts(error) > 1 && error instanceof Error && error.name === 'NoSuchUpload') {
        const stat = await this.stat(key);
        if (stat?.size === size) return;
      }
      throw error;
    }
  }

  /** Aborts the upload (retried, never cancelled by the caller's signal) and builds the error to throw. */
  private async abortAfterFailure(
    key: string,
    uploadId: string,
    cause: unknown,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    try {
      await this.abortUpload(key, uploadId);
    } catch (cleanupError) {
      const reason = cause instanceof Error ? cause.message : `aborted: ${String(cause)}`;
      return new S3UploadError(
        `${reason}; AbortMultipartUpload ${uploadId} also failed (${describeS3Error(cleanupError)}); ` +
          `run abortIncomplete(${JSON.stringify(key)}) to remove the parts`,
        { ...this.info(key, 'abort'), uploadId, cleanupError },
        cause,
      );
    }
    if (signal?.aborted) return abortReason(signal);
    return cause;
  }

  /** AbortMultipartUpload; an upload that is already gone counts as aborted. Rejects with the S3 error. */
  private async abortUpload(key: string, uploadId: string): Promise<void> {
    const { AbortMultipartUploadCommand } = s3Sdk();
    try {
      await this.s3.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
      );
    } catch (error) {
      if (isS3Error(error, 'NoSuchUpload', 404)) return;
      throw error;
    }
  }

  /** Aborts every unfinished multipart upload of exactly `key` and returns how many there were. */
  async abortIncomplete(key: string): Promise<number> {
    const { ListMultipartUploadsCommand } = s3Sdk();
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page: ListMultipartUploadsCommandOutput;
      try {
        page = await this.s3.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: key,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
      } catch (error) {
        throw readFailure(`ListMultipartUploads for ${key}`, error);
      }
      for (const upload of page.Uploads ?? []) {
        if (upload.Key !== key || !upload.UploadId) continue;
        try {
          await this.abortUpload(key, upload.UploadId);
        } catch (error) {
          throw new Error(
            `S3 AbortMultipartUpload ${upload.UploadId} of ${key} failed: ${describeS3Error(error)}`,
            { cause: error },
          );
        }
        aborted += 1;
      }
      if (!page.IsTruncated || (!page.NextKeyMarker && !page.NextUploadIdMarker)) return aborted;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /** Turns a request failure into the error `put` throws (the caller's abort reason when aborted). */
  private failure(
    error: unknown,
    signal: AbortSignal | undefined,
    where: { key: string; stage: Stage; uploadId?: string; partNumber?: number },
  ): unknown {
    if (signal?.aborted) return abortReason(signal);
    if (error instanceof S3UploadError) return error;
    const attempts = sdkAttempts(error);
    const step = {
      'put-object': 'PutObject',
      create: 'CreateMultipartUpload',
      'upload-part': `UploadPart ${where.partNumber}`,
      complete: 'CompleteMultipartUpload',
      abort: 'AbortMultipartUpload',
      'read-body': 'reading the body',
    }[where.stage];
    return new S3UploadError(
      `S3 upload of ${where.key} to bucket ${this.bucket} failed at ${step} after ${attempts} ` +
        `attempt${attempts === 1 ? '' : 's'}: ${describeS3Error(error)}` +
        (where.uploadId ? '; the multipart upload was aborted' : ''),
      {
        ...this.info(where.key, where.stage),
        uploadId: where.uploadId,
        partNumber: where.partNumber,
        attempts,
      },
      error,
    );
  }

  private info(key: string, stage: Stage, extra: { partNumber?: number } = {}): S3UploadError['details'] {
    return { key, bucket: this.bucket, stage, ...extra };
  }
}
