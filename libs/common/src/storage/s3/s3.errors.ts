import type { S3Client } from '@aws-sdk/client-s3';
import { TRANSIENT_NETWORK_ERROR_CODES } from '../../util/network-errors.js';
import { sdkAttempts } from '../../util/sdk-retry.strategy.js';

/** How often and how patiently the S3 store retries one request (the SDK's retry strategy does it). */
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

/**
 * 5xx, 408/429, throttling and network errors are worth another attempt; 4xx (auth, missing bucket) are not.
 * The SDK's retry strategy asks this (see `sdkRetry`).
 */
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

/** The HTTP status of an SDK service error, when it has one. */
export function httpStatus(error: unknown): number | undefined {
  if (error instanceof Error && '$metadata' in error) {
    const metadata = error.$metadata;
    if (metadata && typeof metadata === 'object' && 'httpStatusCode' in metadata) {
      const status = metadata.httpStatusCode;
      return typeof status === 'number' ? status : undefined;
    }
  }
  return undefined;
}

export function isNotFound(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error.name === 'NoSuchKey' || error.name === 'NotFound' || httpStatus(error) === 404;
}

/** Whether `error` is the S3 error `name` or answered with `status`. */
export function isS3Error(error: unknown, name: string, status: number): boolean {
  return error instanceof Error && (error.name === name || httpStatus(error) === status);
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

/** `<cause> (after 3 attempts)`: what a request that failed for good answered, and how often it was tried. */
export function describeRequestFailure(error: unknown): string {
  const attempts = sdkAttempts(error);
  return `${describeS3Error(error)} (after ${attempts} attempt${attempts === 1 ? '' : 's'})`;
}

/** Wraps an SDK failure of a read-side call: `S3 <what> failed: <cause> (after n attempts)`. */
export function readFailure(what: string, error: unknown): Error {
  return new Error(`S3 ${what} failed: ${describeRequestFailure(error)}`, { cause: error });
}

/** What the store's parts share: the client (which retries, see `S3ObjectStore.clientConfig`) and the bucket. */
export interface S3Connection {
  readonly client: S3Client;
  readonly bucket: string;
}
