import type { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { sdkRetry } from '../../util/sdk-retry.strategy.js';
import {
  InvalidObjectKeyError,
  type ObjectStat,
  type ObjectStore,
  type PutObjectOptions,
} from '../object-store.js';
import { assertRangeArguments } from '../object-store.util.js';
import {
  describeRequestFailure,
  httpStatus,
  isNotFound,
  isRetryableS3Error,
  readFailure,
  type S3Connection,
  type S3RetryOptions,
} from './s3.errors.js';
import {
  choosePartSize,
  S3_DEFAULT_PART_SIZE,
  S3_MAX_PART_SIZE,
  S3_MIN_PART_SIZE,
  S3MultipartWriter,
} from './s3.multipart-writer.js';
import { S3RangeReader } from './s3.range-reader.js';
import { s3Sdk } from './s3.sdk.js';

/** The S3 store's settings as configuration gives them (`S3_*` variables). */
export interface S3StoreConfig {
  bucket: string;
  region: string;
  /** S3-compatible endpoint (MinIO, Ceph, R2, s3rver); AWS when absent. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Bytes per part, 5 MiB..5 GiB (default 8 MiB). Grows when `PutObjectOptions.size` needs it. */
  partSize?: number;
  /** Parts in flight per upload (default 4). Memory per upload is about partSize x (queueSize + 1). */
  queueSize?: number;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** Everything an {@link S3ObjectStore} can be built with: the configured settings plus tuning for code. */
export interface S3ObjectStoreOptions extends S3StoreConfig, S3RetryOptions {
  /**
   * A ready client (tests, shared pools), used with its own retry and timeout settings: the retry options
   * above only shape clients built here.
   */
  client?: S3Client;
}

/**
 * Objects in an S3 bucket, written with the plain multipart API (see {@link S3MultipartWriter} for why not
 * lib-storage) and read by range ({@link S3RangeReader}). The SDK retries each request on 5xx, throttling
 * and network errors with exponential backoff and full jitter (see {@link S3ObjectStore.clientConfig}).
 */
export class S3ObjectStore implements ObjectStore {
  readonly driver = 's3' as const;
  readonly bucket: string;
  readonly partSize: number;
  readonly queueSize: number;
  private readonly s3: S3Connection;
  private readonly ownsClient: boolean;
  private readonly writer: S3MultipartWriter;
  private readonly reader: S3RangeReader;

  constructor(options: S3ObjectStoreOptions) {
    if (!options.bucket) throw new Error('S3ObjectStore needs a bucket name');
    this.bucket = options.bucket;
    this.partSize = options.partSize ?? S3_DEFAULT_PART_SIZE;
    if (
      !Number.isSafeInteger(this.partSize) ||
      this.partSize < S3_MIN_PART_SIZE ||
      this.partSize > S3_MAX_PART_SIZE
    ) {
      throw new RangeError(`S3 part size must be an integer from 5 MiB to 5 GiB, got ${options.partSize}`);
    }
    this.queueSize = positiveInteger('queueSize', options.queueSize, 4);
    this.ownsClient = !options.client;
    const client = options.client ?? new (s3Sdk().S3Client)(S3ObjectStore.clientConfig(options));
    this.s3 = { client, bucket: this.bucket };
    const stat = (key: string): Promise<ObjectStat | null> => this.stat(key);
    this.writer = new S3MultipartWriter(this.s3, this.queueSize, stat);
    this.reader = new S3RangeReader(this.s3, stat);
  }

  /**
   * Client settings. Checksums are computed only when an operation requires them: with the SDK's default
   * (`WHEN_SUPPORTED`) S3-compatible servers such as s3rver stored corrupt bytes without an error, and
   * per-part checksums would also have to be repeated in CompleteMultipartUpload. Integrity in transit
   * still holds: SigV4 signs the SHA-256 of every Buffer body (computed by the SDK, or handed in through
   * PutObjectOptions.sha256 by the crypto worker's hash threads), and the object format authenticates
   * every segment.
   *
   * Retries are the SDK's (a retried request resends the same Buffer body, re-signed), classified by
   * {@link isRetryableS3Error}; `requestTimeout` bounds one attempt, the whole part upload included.
   */
  static clientConfig(options: S3ObjectStoreOptions): S3ClientConfig {
    const retry = {
      maxAttempts: positiveInteger('maxAttempts', options.maxAttempts, 5),
      baseDelayMs: nonNegative('baseDelayMs', options.baseDelayMs, 200),
      maxDelayMs: nonNegative('maxDelayMs', options.maxDelayMs, 10_000),
    };
    return {
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      forcePathStyle: options.forcePathStyle ?? false,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...sdkRetry(retry, isRetryableS3Error),
      requestHandler: {
        connectionTimeout: 10_000,
        requestTimeout: positiveInteger('attemptTimeoutMs', options.attemptTimeoutMs, 120_000),
        throwOnRequestTimeout: true,
      },
    };
  }

  /** Closes the client's sockets when this store created the client. */
  async close(): Promise<void> {
    if (this.ownsClient) this.s3.client.destroy();
  }

  async put(key: string, body: Readable, options: PutObjectOptions = {}): Promise<ObjectStat> {
    let partSize: number;
    try {
      assertKey(key);
      options.signal?.throwIfAborted();
      partSize = choosePartSize(this.partSize, options.size);
    } catch (error) {
      body.destroy();
      throw error;
    }
    return this.writer.put(key, body, partSize, options);
  }

  async getRange(key: string, start: number, end?: number): Promise<Readable> {
    assertKey(key);
    assertRangeArguments(key, start, end);
    return this.reader.getRange(key, start, end);
  }

  async stat(key: string): Promise<ObjectStat | null> {
    assertKey(key);
    const { HeadObjectCommand } = s3Sdk();
    try {
      const output = await this.s3.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: output.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw readFailure(`HeadObject of ${key}`, error);
    }
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    const { DeleteObjectCommand } = s3Sdk();
    try {
      await this.s3.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (isNotFound(error)) return;
      throw readFailure(`DeleteObject of ${key}`, error);
    }
  }

  async abortIncomplete(key: string): Promise<number> {
    assertKey(key);
    return this.writer.abortIncomplete(key);
  }

  async check(): Promise<void> {
    const { HeadBucketCommand } = s3Sdk();
    try {
      await this.s3.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      const hint = isNotFound(error)
        ? ' (bucket does not exist)'
        : httpStatus(error) === 403
          ? ' (access denied: check credentials)'
          : '';
      throw new Error(`S3 bucket ${this.bucket} is not usable${hint}: ${describeRequestFailure(error)}`, {
        cause: error,
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
