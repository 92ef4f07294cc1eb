import { randomUUID } from 'node:crypto';
import type {
  CreateSecretCommandInput,
  CreateSecretCommandOutput,
  DeleteSecretCommandInput,
  DeleteSecretCommandOutput,
  DescribeSecretCommandInput,
  DescribeSecretCommandOutput,
  GetSecretValueCommandInput,
  GetSecretValueCommandOutput,
  PutSecretValueCommandInput,
  PutSecretValueCommandOutput,
  SecretsManagerClient,
  SecretsManagerClientConfig,
} from '@aws-sdk/client-secrets-manager';
import { lazyModule } from '../util/lazy-module.js';
import { TRANSIENT_NETWORK_ERROR_CODES } from '../util/network-errors.js';
import { sdkAttempts, sdkRetry } from '../util/sdk-retry.strategy.js';

/** Loaded when the first client is built: never with KEY_PROVIDER=local. */
const sdk = lazyModule<typeof import('@aws-sdk/client-secrets-manager')>('@aws-sdk/client-secrets-manager');

/**
 * Exponential backoff with full jitter: retry n waits a uniform random time in [0, min(max, base * 2^(n-1))).
 * The SDK's retry strategy does the retrying (see `sdkRetry`).
 */
export interface RetryOptions {
  /** Total attempts including the first (default 5). */
  maxAttempts?: number;
  /** Default 100 ms. */
  baseDelayMs?: number;
  /** Default 5000 ms. */
  maxDelayMs?: number;
}

/** How to reach Secrets Manager. Either `client` (used as is) or region/endpoint/credentials. */
export interface SecretsManagerConnectionOptions {
  region: string;
  /** Endpoint override (tests, VPC endpoints, LocalStack). */
  endpoint?: string;
  /** Default: the SDK's default credential chain (environment, profile, IMDS, IRSA...). */
  credentials?: SecretsManagerClientConfig['credentials'];
  /** A ready client, used with its own retry and timeout settings ({@link RetryOptions} shape clients built here). */
  client?: SecretsManagerClient;
  retry?: RetryOptions;
  /** Per-attempt connection and request timeouts for clients built here (default 5000 ms). */
  requestTimeoutMs?: number;
}

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'RequestLimitExceeded',
  'SlowDown',
]);
const TRANSIENT = new Set([
  'InternalServiceError',
  'InternalFailure',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);

/**
 * Whether retrying the same request may succeed: throttling, 5xx, timeouts and connection failures. The
 * SDK's retry strategy asks this.
 */
export function isRetryableError(error: unknown): boolean {
  if (!isRecord(error)) return false;
  const name = typeof error.name === 'string' ? error.name : '';
  if (THROTTLING.has(name) || TRANSIENT.has(name)) return true;
  if (typeof error.code === 'string' && TRANSIENT_NETWORK_ERROR_CODES.has(error.code)) return true;
  if (isRecord(error.$retryable)) return true;
  const metadata = isRecord(error.$metadata) ? error.$metadata : undefined;
  const status = metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  // The SDK corrected its clock from the server's Date header: the re-signed request will be accepted.
  return metadata?.clockSkewCorrected === true;
}

/** A Secrets Manager call that failed for good (after retries when the cause was transient). */
export class SecretsManagerRequestError extends Error {
  /** The service's error type (`ResourceNotFoundException`...) or the network error code. */
  readonly code: string;

  constructor(
    readonly operation: string,
    readonly secretId: string,
    readonly attempts: number,
    cause: unknown,
  ) {
    const code = errorName(cause);
    const detail =
      cause instanceof Error && cause.message && cause.message !== code ? `: ${cause.message}` : '';
    const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
    super(`Secrets Manager ${operation} on "${secretId}" failed${tries}: ${code}${detail}`, { cause });
    this.name = 'SecretsManagerRequestError';
    this.code = code;
  }
}

/** Whether `error` is a {@link SecretsManagerRequestError} with the given service error type. */
export function isSecretsManagerError(error: unknown, code: string): error is SecretsManagerRequestError {
  return error instanceof SecretsManagerRequestError && error.code === code;
}

/**
 * The few Secrets Manager operations TESS uses, each retried by the SDK with exponential backoff and full
 * jitter on throttling, 5xx and network errors. Writes carry a ClientRequestToken fixed before the first attempt, so
 * a retry of a write that did reach the service is idempotent. Never logs; errors never carry secret values.
 */
export class RetryingSecretsManagerClient {
  readonly client: SecretsManagerClient;
  readonly #ownsClient: boolean;

  constructor(options: SecretsManagerConnectionOptions) {
    if (options.client) {
      this.client = options.client;
      this.#ownsClient = false;
    } else {
      if (!options.region) throw new Error('Secrets Manager needs a region');
      const timeout = options.requestTimeoutMs ?? 5000;
      const baseDelayMs = Math.max(0, options.retry?.baseDelayMs ?? 100);
      const retry = {
        maxAttempts: Math.max(1, Math.floor(options.retry?.maxAttempts ?? 5)),
        baseDelayMs,
        maxDelayMs: Math.max(baseDelayMs, options.retry?.maxDelayMs ?? 5000),
      };
      this.client = new (sdk().SecretsManagerClient)({
        region: options.region,
        endpoint: options.endpoint,
        credentials: options.credentials,
        ...sdkRetry(retry, isRetryableError),
        requestHandler: { requestTimeout: timeout, connectionTimeout: timeout, throwOnRequestTimeout: true },
      });
      this.#ownsClient = true;
    }
  }

  getSecretValue(input: GetSecretValueCommandInput): Promise<GetSecretValueCommandOutput> {
    return this.#call('GetSecretValue', input.SecretId, () =>
      this.client.send(new (sdk().GetSecretValueCommand)(input)),
    );
  }

  describeSecret(input: DescribeSecretCommandInput): Promise<DescribeSecretCommandOutput> {
    return this.#call('DescribeSecret', input.SecretId, () =>
      this.client.send(new (sdk().DescribeSecretCommand)(input)),
    );
  }

  createSecret(input: CreateSecretCommandInput): Promise<CreateSecretCommandOutput> {
    const fixed = { ...input, ClientRequestToken: input.ClientRequestToken ?? randomUUID() };
    return this.#call('CreateSecret', input.Name, () =>
      this.client.send(new (sdk().CreateSecretCommand)(fixed)),
    );
  }

  putSecretValue(input: PutSecretValueCommandInput): Promise<PutSecretValueCommandOutput> {
    const fixed = { ...input, ClientRequestToken: input.ClientRequestToken ?? randomUUID() };
    return this.#call('PutSecretValue', input.SecretId, () =>
      this.client.send(new (sdk().PutSecretValueCommand)(fixed)),
    );
  }

  deleteSecret(input: DeleteSecretCommandInput): Promise<DeleteSecretCommandOutput> {
    return this.#call('DeleteSecret', input.SecretId, () =>
      this.client.send(new (sdk().DeleteSecretCommand)(input)),
    );
  }

  /** Releases the HTTP connections of a client built here (an injected client is left alone). */
  close(): void {
    if (this.#ownsClient) this.client.destroy();
  }

  /** Names the operation and secret in the error `send` (the SDK, after its retries) rejects with. */
  async #call<T>(operation: string, secretId: string | undefined, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw new SecretsManagerRequestError(operation, secretId ?? '?', sdkAttempts(error), error);
    }
  }
}

function errorName(error: unknown): string {
  if (!isRecord(error)) return String(error);
  if (typeof error.code === 'string' && TRANSIENT_NETWORK_ERROR_CODES.has(error.code)) return error.code;
  if (typeof error.name === 'string' && error.name !== 'Error') return error.name;
  if (typeof error.code === 'string') return error.code;
  return 'Error';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
