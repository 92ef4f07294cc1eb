import type { S3ClientConfig } from '@aws-sdk/client-s3';

/** Exponential backoff with full jitter: retry n waits a uniform random time in [0, min(max, base * 2^(n-1))). */
export interface BackoffOptions {
  /** Attempts per request, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

// The SDK's own retry strategy interface (from @smithy/types), taken from a client config TESS depends on.
type RetryStrategyV2 = Extract<
  NonNullable<S3ClientConfig['retryStrategy']>,
  { acquireInitialRetryToken: unknown }
>;
type RetryToken = Awaited<ReturnType<RetryStrategyV2['acquireInitialRetryToken']>>;
type RetryErrorInfo = Parameters<RetryStrategyV2['refreshRetryTokenForRetry']>[1];

function retryToken(retryCount: number, delayMs: number): RetryToken {
  return { getRetryCount: () => retryCount, getRetryDelay: () => delayMs };
}

/**
 * Decides, for the SDK's retry middleware, whether and when a failed attempt is tried again. The middleware
 * runs the loop: it resends the same signed request, waits out the delay (cancelled by the abort signal)
 * and records the attempts in `$metadata.attempts` of the result or error.
 *
 * Why not the SDK's `StandardRetryStrategy`/`ConfiguredRetryStrategy`: their classification retries only
 * 500/502/503/504 of the 5xx and not S3's BadDigest, and their retry quota (500 tokens per client, 14 per
 * retry, refilled by 1 per success) stops retrying every part of every upload once an outage has used it
 * up, where TESS retries each request up to `maxAttempts` times. `isRetryable` is the tested classification.
 */
class ClassifiedRetryStrategy implements RetryStrategyV2 {
  constructor(
    private readonly options: BackoffOptions,
    private readonly isRetryable: (error: unknown) => boolean,
  ) {}

  async acquireInitialRetryToken(): Promise<RetryToken> {
    return retryToken(0, 0);
  }

  async refreshRetryTokenForRetry(token: RetryToken, errorInfo: RetryErrorInfo): Promise<RetryToken> {
    const retry = token.getRetryCount() + 1;
    if (retry >= this.options.maxAttempts || !this.isRetryable(errorInfo.error)) {
      throw new Error('No retry token available');
    }
    const ceiling = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (retry - 1));
    return retryToken(retry, Math.random() * ceiling);
  }

  recordSuccess(): void {}
}

/** Client settings that make the SDK retry as `options` and `isRetryable` say. */
export function sdkRetry(
  options: BackoffOptions,
  isRetryable: (error: unknown) => boolean,
): { maxAttempts: number; retryStrategy: RetryStrategyV2 } {
  return {
    maxAttempts: options.maxAttempts,
    retryStrategy: new ClassifiedRetryStrategy(options, isRetryable),
  };
}

/** How many attempts the SDK made before `error` (1 when the SDK did not count, e.g. a thrown bug). */
export function sdkAttempts(error: unknown): number {
  if (typeof error !== 'object' || error === null || !('$metadata' in error)) return 1;
  const metadata = error.$metadata;
  if (typeof metadata !== 'object' || metadata === null || !('attempts' in metadata)) return 1;
  return typeof metadata.attempts === 'number' && metadata.attempts > 0 ? metadata.attempts : 1;
}
