import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandOutput,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { TRANSIENT_NETWORK_ERROR_CODES } from '../util/network-errors.js';
import {
  InvalidObjectKeyError,
  ObjectNotFoundError,
  type ObjectStat,
  type ObjectStore,
  type PutObjectOptions,
} from './object-store.js';
import {
  abortReason,
  assertRangeArguments,
  emptyStream,
  MiB,
  ProgressReporter,
  resolveRange,
  toBuffer,
} from './object-store.util.js';

/** S3 limits for multipart uploads. */
export const S3_MIN_PART_SIZE = 5 * MiB;
export const S3_MAX_PART_SIZE = 5 * 1024 * MiB;
export const S3_MAX_PARTS = 10_000;

export interface S3RetryOptions {
  /** Attempts per request, the first included (default 5). */
  maxAttempts?: number;
  /** First backoff ceiling in ms; doubles per attempt, full jitter (default 200). */
  baseDelayMs?: number;
  /** Upper bound of one backoff in ms (default 10,000). */
  maxDelayMs?: number;
  /** One attempt of a request (whole part upload included) gives up after this many ms (default 120,000). */
  attemptTimeoutMs?: number;
}

export interface S3ObjectStoreOptions extends S3RetryOptions {
  bucket: string;
  region: string;
  /** S3-compatible endpoint (MinIO, Ceph, R2, s3rver); AWS when absent. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Bytes per part, 5 MiB..5 GiB (default 5 MiB). Grows when `PutObjectOptions.size` needs it. */
  partSize?: number;
  /** Parts in flight per upload (default 4). Memory per upload is about partSize x (queueSize + 1). */
  queueSize?: number;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * A ready client (tests, shared pools). Its own retry settings then add to ours; clients built here
   * use `maxAttempts: 1` so retries happen once, in this class.
   */
  client?: S3Client;
}

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

/** Part size for an object of `size` bytes (when known): the configured one, grown to fit 10,000 parts. */
export function choosePartSize(partSize: number, size?: number): number {
  if (size === undefined || size <= partSize * S3_MAX_PARTS) return partSize;
  const grown = Math.ceil(Math.ceil(size / S3_MAX_PARTS) / MiB) * MiB;
  if (grown > S3_MAX_PART_SIZE) {
    throw new RangeError(`An object of ${size} bytes exceeds S3's limit of ${S3_MAX_PARTS} parts of 5 GiB`);
  }
  return grown;
}

const RETRYABLE_NAMES = new Set([
  'InternalError',
  'ServiceUnavailable',
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeoutException',
  'RequestThrottled',
  'TimeoutError',
  'BadDigest',
]);

/** 5xx, 408/429, throttling and network errors are worth another attempt; 4xx (auth, missing bucket) are not. */
export function isRetryableS3Error(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = httpStatus(error);
  if (status !== undefined && (status >= 500 || status === 408 || status === 429)) return true;
  if (RETRYABLE_NAMES.has(error.name)) return true;
  if ('$retryable' in error && error.$retryable) return true;
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 4; depth++) {
    const code = 'code' in current ? current.code : undefined;
    if (typeof code === 'string' && TRANSIENT_NETWORK_ERROR_CODES.has(code)) return true;
    current = current.cause;
  }
  return false;
}

function httpStatus(error: unknown): number | undefined {
  if (error instanceof Error && '$metadata' in error) {
    const metadata = error.$metadata;
    if (metadata && typeof metadata === 'object' && 'httpStatusCode' in metadata) {
      const status = metadata.httpStatusCode;
      return typeof status === 'number' ? status : undefined;
    }
  }
  return undefined;
}

function isNotFound(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.name === 'NoSuchKey' || error.name === 'NotFound' || httpStatus(error) === 404;
}

/** `InternalError (HTTP 500): We encountered an internal error` / `ECONNRESET: socket hang up`. */
export function describeS3Error(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const status = httpStatus(error);
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  const label = code && code !== error.name ? `${error.name} ${code}` : error.name;
  const message = error.message && error.message !== 'UnknownError' ? `: ${error.message}` : '';
  return `${label}${status ? ` (HTTP ${status})` : ''}${message}`;
}

/** For requests no caller can cancel (reads, cleanup). */
const neverAborted = new AbortController().signal;

/** A request that failed after `attempts` tries, with the last cause. */
class RequestFailure extends Error {
  constructor(
    readonly attempts: number,
    readonly lastCause: unknown,
    timedOut: boolean,
  ) {
    super(timedOut ? 'no response in time' : describeS3Error(lastCause), { cause: lastCause });
  }
}

class AttemptTimeoutError extends Error {
  constructor(ms: number) {
    super(`No response within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** Reusable part buffers: at most queueSize + 1 exist per upload. */
class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(private readonly size: number) {}
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }
  give(buffer: Buffer): void {
    this.free.push(buffer);
  }
}

/** Fills part buffers from a byte stream, whatever its chunk sizes. */
class PartReader {
  private leftover: Buffer | null = null;
  private ended = false;
  constructor(private readonly chunks: AsyncIterator<unknown>) {}

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
      }
      const copied = chunk.copy(target, filled);
      filled += copied;
      if (copied < chunk.length) this.leftover = chunk.subarray(copied);
    }
    return filled;
  }
}

/**
 * Objects in an S3 bucket, written with the plain multipart API (no lib-storage).
 *
 * `put` reads the body into part-size Buffers (Buffers, so the SDK signs them without re-reading a stream)
 * and uploads at most `queueSize` of them at a time, so memory stays at partSize x (queueSize + 1) however
 * large the object. Each request is retried on 5xx, throttling and network errors with exponential backoff
 * and full jitter. On any failure or abort the multipart upload is aborted before the error is thrown, so no
 * billable parts are left behind. Bodies shorter than one part go in a single PutObject (also atomic);
 * a body of exactly one part or more uses multipart.
 */
export class S3ObjectStore implements ObjectStore {
  readonly driver = 's3' as const;
  readonly bucket: string;
  readonly partSize: number;
  readonly queueSize: number;
  private readonly client: S3Client;
  private readonly ownsClient: boolean;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly attemptTimeoutMs: number;

  constructor(options: S3ObjectStoreOptions) {
    if (!options.bucket) throw new Error('S3ObjectStore needs a bucket name');
    this.bucket = options.bucket;
    this.partSize = options.partSize ?? S3_MIN_PART_SIZE;
    if (
      !Number.isSafeInteger(this.partSize) ||
      this.partSize < S3_MIN_PART_SIZE ||
      this.partSize > S3_MAX_PART_SIZE
    ) {
      throw new RangeError(`S3 part size must be an integer from 5 MiB to 5 GiB, got ${options.partSize}`);
    }
    this.queueSize = positiveInteger('queueSize', options.queueSize, 4);
    this.maxAttempts = positiveInteger('maxAttempts', options.maxAttempts, 5);
    this.baseDelayMs = nonNegative('baseDelayMs', options.baseDelayMs, 200);
    this.maxDelayMs = nonNegative('maxDelayMs', options.maxDelayMs, 10_000);
    this.attemptTimeoutMs = positiveInteger('attemptTimeoutMs', options.attemptTimeoutMs, 120_000);
    this.ownsClient = !options.client;
    this.client = options.client ?? new S3Client(S3ObjectStore.clientConfig(options));
  }

  /**
   * Client settings. Checksums are computed only when an operation requires them: with the SDK's default
   * (`WHEN_SUPPORTED`) S3-compatible servers such as s3rver stored corrupt bytes without an error, and
   * per-part checksums would also have to be repeated in CompleteMultipartUpload. Integrity in transit
   * still holds: SigV4 signs the SHA-256 of every Buffer body, and the object format authenticates
   * every segment.
   */
  static clientConfig(options: S3ObjectStoreOptions): S3ClientConfig {
    return {
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 10_000 },
    };
  }

  /** Closes the client's sockets when this store created the client. */
  destroy(): void {
    if (this.ownsClient) this.client.destroy();
  }

  async put(key: string, body: Readable, options: PutObjectOptions = {}): Promise<ObjectStat> {
    const { signal } = options;
    let partSize: number;
    try {
      assertKey(key);
      signal?.throwIfAborted();
      partSize = choosePartSize(this.partSize, options.size);
    } catch (error) {
      body.destroy();
      throw error;
    }
    // One controller stops everything: the caller's abort, or the first part that fails for good.
    const stop = new AbortController();
    const onAbort = (): void => {
      if (signal) stop.abort(abortReason(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const onStop = (): void => {
      body.destroy();
    };
    stop.signal.addEventListener('abort', onStop, { once: true });
    const chunks = body[Symbol.asyncIterator]();
    const reader = new PartReader(chunks);
    const progress = new ProgressReporter(options.onProgress);
    const pool = new BufferPool(partSize);
    try {
      const first = pool.take();
      const firstLength = await this.readPart(reader, first, key, 1, stop.signal, signal);
      if (firstLength < partSize) {
        const bytes = first.subarray(0, firstLength);
        await this.request(stop.signal, (attemptSignal) =>
          this.client.send(
            new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: bytes, ContentLength: firstLength }),
            { abortSignal: attemptSignal },
          ),
        ).catch((error: unknown) => {
          throw this.failure(error, signal, { key, stage: 'put-object' });
        });
        progress.finish(firstLength);
        return { size: firstLength };
      }
      return await this.putMultipart(key, reader, first, partSize, pool, progress, stop, signal);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      stop.signal.removeEventListener('abort', onStop);
      if (!reader.done) body.destroy();
    }
  }

  private async putMultipart(
    key: string,
    reader: PartReader,
    first: Buffer,
    partSize: number,
    pool: BufferPool,
    progress: ProgressReporter,
    stop: AbortController,
    signal: AbortSignal | undefined,
  ): Promise<ObjectStat> {
    // Not cancelled by the caller: a cancelled request may still create an upload whose id we would never
    // learn. An abort that arrives meanwhile is honoured right after, by aborting the upload by its id.
    const created = await this.request(neverAborted, (attemptSignal) =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }), {
        abortSignal: attemptSignal,
      }),
    ).catch((error: unknown) => {
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
        const task = this.request(stop.signal, (attemptSignal) =>
          this.client.send(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: number,
              Body: bytes,
              ContentLength: bytes.length,
            }),
            { abortSignal: attemptSignal },
          ),
        )
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
        length = await this.readPart(reader, buffer, key, partNumber + 1, stop.signal, signal);
        if (length === 0) break;
      }
      await Promise.all(inFlight.values());
      if (failed) throw failed.error;
      parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      // The commit point: an abort before it removes everything; Complete itself runs to the end, since a
      // cancelled Complete may still commit the object on the server.
      stop.signal.throwIfAborted();
      await this.complete(key, uploadId, parts, bytesDone, neverAborted).catch((error: unknown) => {
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

  /** Reads the next part; a read error names the part, an abort surfaces as the caller's reason. */
  private async readPart(
    reader: PartReader,
    buffer: Buffer,
    key: string,
    partNumber: number,
    stopSignal: AbortSignal,
    signal: AbortSignal | undefined,
  ): Promise<number> {
    try {
      return await reader.fill(buffer);
    } catch (error) {
      if (signal?.aborted) throw abortReason(signal);
      if (stopSignal.aborted) throw stopSignal.reason;
      throw new S3UploadError(
        `Reading the body of ${key} failed before part ${partNumber}: ${describeS3Error(error)}`,
        this.info(key, 'read-body', { partNumber }),
        error,
      );
    }
  }

  /**
   * CompleteMultipartUpload, retried. A retry after a lost success answers NoSuchUpload: the object then
   * exists with the expected size, which counts as success.
   */
  private async complete(
    key: string,
    uploadId: string,
    parts: CompletedPart[],
    size: number,
    stopSignal: AbortSignal,
  ): Promise<void> {
    let attempted = 0;
    try {
      await this.request(stopSignal, (attemptSignal) => {
        attempted += 1;
        return this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
          }),
          { abortSignal: attemptSignal },
        );
      });
    } catch (error) {
      const last = error instanceof RequestFailure ? error.lastCause : error;
      if (attempted > 1 && last instanceof Error && last.name === 'NoSuchUpload') {
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

  private async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.request(neverAborted, (attemptSignal) =>
        this.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
          {
            abortSignal: attemptSignal,
          },
        ),
      );
    } catch (error) {
      const last = error instanceof RequestFailure ? error.lastCause : error;
      if (last instanceof Error && (last.name === 'NoSuchUpload' || httpStatus(last) === 404)) return;
      throw last;
    }
  }

  /** Turns a request failure into the error `put` throws (the caller's abort reason when aborted). */
  private failure(
    error: unknown,
    signal: AbortSignal | undefined,
    where: { key: string; stage: S3UploadError['details']['stage']; uploadId?: string; partNumber?: number },
  ): unknown {
    if (signal?.aborted) return abortReason(signal);
    if (error instanceof S3UploadError) return error;
    const attempts = error instanceof RequestFailure ? error.attempts : 1;
    const last = error instanceof RequestFailure ? error.lastCause : error;
    const step = {
      'put-object': 'PutObject',
      create: 'CreateMultipartUpload',
      'upload-part': `UploadPart ${where.partNumber}`,
      complete: 'CompleteMultipartUpload',
      abort: 'AbortMultipartUpload',
      'read-body': 'reading the body',
    }[where.stage];
    const detail = error instanceof RequestFailure ? error.message : describeS3Error(error);
    return new S3UploadError(
      `S3 upload of ${where.key} to bucket ${this.bucket} failed at ${step} after ${attempts} ` +
        `attempt${attempts === 1 ? '' : 's'}: ${detail}` +
        (where.uploadId ? '; the multipart upload was aborted' : ''),
      {
        ...this.info(where.key, where.stage),
        uploadId: where.uploadId,
        partNumber: where.partNumber,
        attempts,
      },
      last,
    );
  }

  private info(
    key: string,
    stage: S3UploadError['details']['stage'],
    extra: { partNumber?: number } = {},
  ): S3UploadError['details'] {
    return { key, bucket: this.bucket, stage, ...extra };
  }

  /**
   * Runs `send` until it succeeds, a non-retryable error occurs or attempts run out. Each attempt gets
   * its own timeout; `signal` (caller abort or a failed sibling part) cancels the attempt and the backoff.
   */
  private async request<T>(
    signal: AbortSignal,
    send: (attemptSignal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted();
      const attemptController = new AbortController();
      const timeout = new AttemptTimeoutError(this.attemptTimeoutMs);
      const timer = setTimeout(() => attemptController.abort(timeout), this.attemptTimeoutMs);
      const forward = (): void => attemptController.abort(signal.reason);
      signal.addEventListener('abort', forward, { once: true });
      try {
        return await send(attemptController.signal);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        const timedOut = attemptController.signal.reason === timeout;
        const cause = timedOut ? timeout : error;
        if (!(timedOut || isRetryableS3Error(error)) || attempt >= this.maxAttempts) {
          throw new RequestFailure(attempt, cause, timedOut);
        }
        const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
        try {
          await sleep(Math.random() * ceiling, undefined, { signal });
        } catch {
          throw signal.reason;
        }
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', forward);
      }
    }
  }

  async getRange(key: string, start: number, end?: number): Promise<Readable> {
    assertKey(key);
    assertRangeArguments(key, start, end);
    const whole = start === 0 && end === undefined;
    let output: GetObjectCommandOutput;
    try {
      output = await this.request(neverAborted, (attemptSignal) =>
        this.client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            // A 0-byte object has no byte 0, so a whole read carries no Range at all.
            ...(whole ? {} : { Range: `bytes=${start}-${end ?? ''}` }),
          }),
          { abortSignal: attemptSignal },
        ),
      );
    } catch (error) {
      const last = error instanceof RequestFailure ? error.lastCause : error;
      if (isNotFound(last)) throw new ObjectNotFoundError(key);
      if (last instanceof Error && (last.name === 'InvalidRange' || httpStatus(last) === 416)) {
        const stat = await this.stat(key);
        if (!stat) throw new ObjectNotFoundError(key);
        if (resolveRange(key, stat.size, start, end) === null) return emptyStream();
      }
      throw new Error(
        `S3 read of ${key} (bytes ${start}-${end ?? ''}) failed: ${describeRequestFailure(error)}`,
        {
          cause: last,
        },
      );
    }
    const body = output.Body;
    if (!(body instanceof Readable)) {
      throw new Error(`S3 returned no readable body for ${key}`);
    }
    const expected = expectedLength(key, output, start, end, whole);
    if (expected === 0) {
      body.destroy();
      return emptyStream();
    }
    return exactly(body, expected, key);
  }

  async stat(key: string): Promise<ObjectStat | null> {
    assertKey(key);
    try {
      const output = await this.request(neverAborted, (attemptSignal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), {
          abortSignal: attemptSignal,
        }),
      );
      return { size: output.ContentLength ?? 0 };
    } catch (error) {
      const last = error instanceof RequestFailure ? error.lastCause : error;
      if (isNotFound(last)) return null;
      throw new Error(`S3 HeadObject of ${key} failed: ${describeRequestFailure(error)}`, { cause: last });
    }
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    try {
      await this.request(neverAborted, (attemptSignal) =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), {
          abortSignal: attemptSignal,
        }),
      );
    } catch (error) {
      const last = error instanceof RequestFailure ? error.lastCause : error;
      if (isNotFound(last)) return;
      throw new Error(`S3 DeleteObject of ${key} failed: ${describeRequestFailure(error)}`, { cause: last });
    }
  }

  async abortIncomplete(key: string): Promise<number> {
    assertKey(key);
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      let page: ListMultipartUploadsCommandOutput;
      try {
        page = await this.request(neverAborted, (attemptSignal) =>
          this.client.send(
            new ListMultipartUploadsCommand({
              Bucket: this.bucket,
              Prefix: key,
              KeyMarker: keyMarker,
              UploadIdMarker: uploadIdMarker,
            }),
            { abortSignal: attemptSignal },
          ),
        );
      } catch (error) {
        const last = error instanceof RequestFailure ? error.lastCause : error;
        throw new Error(`S3 ListMultipartUploads for ${key} failed: ${describeRequestFailure(error)}`, {
          cause: last,
        });
      }
      for (const upload of page.Uploads ?? []) {
        if (upload.Key !== key || !upload.UploadId) continue;
        try {
          await this.abortUpload(key, upload.UploadId);
        } catch (error) {
          throw new Error(
            `S3 AbortMultipartUpload ${upload.UploadId} of ${key} failed: ${describeS3Error(error)}`,
            {
              cause: error,
            },
          );
        }
        aborted += 1;
      }
      if (!page.IsTruncated || (!page.NextKeyMarker && !page.NextUploadIdMarker)) return aborted;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  async check(): Promise<void> {
    try {
      await this.request(neverAborted, (attemptSignal) =>
        this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: attemptSignal }),
      );
    } catch (error) {
      const last = error instanceof RequestFailure ? error.lastCause : error;
      const hint = isNotFound(last)
        ? ' (bucket does not exist)'
        : httpStatus(last) === 403
          ? ' (access denied: check credentials)'
          : '';
      throw new Error(`S3 bucket ${this.bucket} is not usable${hint}: ${describeRequestFailure(error)}`, {
        cause: last,
      });
    }
  }
}

function assertKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidObjectKeyError(String(key), 'empty');
  if (Buffer.byteLength(key) > 1024) throw new InvalidObjectKeyError(key, 'longer than 1024 bytes');
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const result = value ?? fallback;
  if (!Number.isSafeInteger(result) || result < 1) {
    throw new RangeError(`S3ObjectStore ${name} must be a positive integer, got ${value}`);
  }
  return result;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  const result = value ?? fallback;
  if (!Number.isFinite(result) || result < 0) {
    throw new RangeError(`S3ObjectStore ${name} must be a non-negative number, got ${value}`);
  }
  return result;
}

function describeRequestFailure(error: unknown): string {
  if (error instanceof RequestFailure) {
    return `${error.message} (after ${error.attempts} attempt${error.attempts === 1 ? '' : 's'})`;
  }
  return describeS3Error(error);
}

/**
 * How many bytes the response must carry. Checks that the server honoured the range: s3rver 3.7, for
 * one, answers `bytes=0-0` with the whole object, so a longer answer that starts right is trimmed.
 */
function expectedLength(
  key: string,
  output: GetObjectCommandOutput,
  start: number,
  end: number | undefined,
  whole: boolean,
): number {
  const total = output.ContentLength ?? 0;
  if (whole) return total;
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(output.ContentRange ?? '');
  if (!match) {
    if (start === 0) return Math.min(total, end === undefined ? total : end + 1);
    throw new Error(
      `S3 ignored the range of ${key} (bytes ${start}-${end ?? ''}): no Content-Range in the answer`,
    );
  }
  const first = Number(match[1]);
  const last = Number(match[2]);
  if (first !== start) {
    throw new Error(
      `S3 answered bytes ${first}-${last} of ${key} to a request for bytes ${start}-${end ?? ''}`,
    );
  }
  const size = match[3] === '*' ? undefined : Number(match[3]);
  const wantedLast = Math.min(end ?? Number.MAX_SAFE_INTEGER, size === undefined ? last : size - 1);
  if (last < wantedLast) {
    throw new Error(`S3 answered bytes ${first}-${last} of ${key}, short of the requested end ${wantedLast}`);
  }
  return wantedLast - start + 1;
}

/** Passes exactly `length` bytes of `source` through, then ends; errors when the source ends early. */
function exactly(source: Readable, length: number, key: string): Readable {
  let remaining = length;
  const output = new Readable({
    highWaterMark: MiB,
    read() {
      source.resume();
    },
    destroy(error, callback) {
      source.destroy();
      callback(error);
    },
  });
  source.on('data', (chunk: unknown) => {
    if (remaining === 0) return;
    let buffer = toBuffer(chunk);
    if (buffer.length > remaining) buffer = buffer.subarray(0, remaining);
    remaining -= buffer.length;
    const more = output.push(buffer);
    if (remaining === 0) {
      output.push(null);
      source.destroy();
    } else if (!more) {
      source.pause();
    }
  });
  source.on('end', () => {
    if (remaining > 0) output.destroy(new Error(`S3 body of ${key} ended ${remaining} bytes early`));
  });
  source.on('error', (error) => {
    if (remaining > 0) output.destroy(error);
  });
  source.on('close', () => {
    if (remaining > 0 && !source.readableEnded) {
      output.destroy(new Error(`S3 connection for ${key} closed ${remaining} bytes early`));
    }
  });
  return output;
}
