import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { TRANSIENT_NETWORK_ERROR_CODES } from '../../util/network-errors.js';

/** How often and how patiently the S3 store retries one request. */
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

/** A request that failed after `attempts` tries, with the last cause. */
export class RequestFailure extends Error {
  constructor(
    readonly attempts: number,
    readonly lastCause: unknown,
    timedOut: boolean,
  ) {
    super(timedOut ? 'no response in time' : describeS3Error(lastCause), { cause: lastCause });
  }
}

/** The error S3 (or the network) last answered: unwraps a {@link RequestFailure}. */
export function lastCause(error: unknown): unknown {
  return error instanceof RequestFailure ? error.lastCause : error;
}

/** How many attempts a failed request made (1 for errors thrown before or outside a request). */
export function attemptsOf(error: unknown): number {
  return error instanceof RequestFailure ? error.attempts : 1;
}

/** `<cause> (after 3 attempts)` for a failed request, the plain description otherwise. */
export function describeRequestFailure(error: unknown): string {
  if (error instanceof RequestFailure) {
    return `${error.message} (after ${error.attempts} attempt${error.attempts === 1 ? '' : 's'})`;
  }
  return describeS3Error(error);
}

/** Wraps an SDK failure of a read-side call: `S3 <what> failed: <cause> (after n attempts)`. */
export function readFailure(what: string, error: unknown): Error {
  return new Error(`S3 ${what} failed: ${describeRequestFailure(error)}`, { cause: lastCause(error) });
}

class AttemptTimeoutError extends Error {
  constructor(ms: number) {
    super(`No response within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** For requests no caller can cancel (reads, cleanup). */
export const neverAborted = new AbortController().signal;

/** Sends one S3 request, attempt after attempt; `attemptSignal` cancels the attempt in flight. */
export type S3Request = <T>(
  signal: AbortSignal,
  send: (attemptSignal: AbortSignal) => Promise<T>,
) => Promise<T>;

/**
 * A request function that runs `send` until it succeeds, a non-retryable error occurs or attempts run out,
 * with exponential backoff and full jitter. Each attempt gets its own timeout; `signal` (caller abort or a
 * failed sibling part) cancels the attempt and the backoff. Failures reject with {@link RequestFailure},
 * an abort with `signal.reason`.
 */
export function retryingRequest(options: Required<S3RetryOptions>): S3Request {
  const { maxAttempts, baseDelayMs, maxDelayMs, attemptTimeoutMs } = options;
  return async <T>(signal: AbortSignal, send: (attemptSignal: AbortSignal) => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      signal.throwIfAborted();
      const attemptController = new AbortController();
      const timeout = new AttemptTimeoutError(attemptTimeoutMs);
      const timer = setTimeout(() => attemptController.abort(timeout), attemptTimeoutMs);
      const forward = (): void => attemptController.abort(signal.reason);
      signal.addEventListener('abort', forward, { once: true });
      try {
        return await send(attemptController.signal);
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        const timedOut = attemptController.signal.reason === timeout;
        const cause = timedOut ? timeout : error;
        if (!(timedOut || isRetryableS3Error(error)) || attempt >= maxAttempts) {
          throw new RequestFailure(attempt, cause, timedOut);
        }
        const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
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
  };
}

/** What the store's parts share: the client, the bucket and how requests are retried. */
export interface S3Connection {
  readonly client: S3Client;
  readonly bucket: string;
  readonly request: S3Request;
}
