import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FAKE_AWS } from '../../../../test/support/secrets-manager-fake.js';
import {
  isRetryableError,
  RetryingSecretsManagerClient,
  SecretsManagerRequestError,
} from './secrets-manager.client.js';

/**
 * Answers every attempt of `sm`'s requests with `answer` instead of the network. It sits below the SDK's
 * retry middleware, so the retries run exactly as in production.
 */
function answerAttempts(
  sm: RetryingSecretsManagerClient,
  answer: (command: { input: { ClientRequestToken?: string } }) => Promise<object>,
): void {
  const middleware = () => async (args: { input: object }) => ({
    output: { ...(await answer({ input: args.input })), $metadata: {} },
    response: {},
  });
  sm.client.middlewareStack.add(middleware as never, { step: 'deserialize', priority: 'high' });
}

function serviceError(name: string, httpStatusCode: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), { name, $metadata: { httpStatusCode }, ...extra });
}

describe('isRetryableError', () => {
  it.each([
    ['ThrottlingException', 400],
    ['TooManyRequestsException', 429],
    ['RequestLimitExceeded', 400],
    ['InternalServiceError', 500],
    ['SomethingNew', 503],
    ['Anything', 429],
  ])('retries %s (%i)', (name, status) => {
    expect(isRetryableError(serviceError(name, status))).toBe(true);
  });

  it.each([
    ['ResourceNotFoundException', 400],
    ['ResourceExistsException', 400],
    ['AccessDeniedException', 400],
    ['InvalidParameterException', 400],
    ['LimitExceededException', 400],
    ['DecryptionFailure', 400],
  ])('does not retry %s (%i)', (name, status) => {
    expect(isRetryableError(serviceError(name, status))).toBe(false);
  });

  it('retries network failures and timeouts, and a request re-signed after clock skew correction', () => {
    for (const code of ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']) {
      expect(isRetryableError(Object.assign(new Error('socket'), { code }))).toBe(true);
    }
    expect(isRetryableError(Object.assign(new Error('slow'), { name: 'TimeoutError' }))).toBe(true);
    expect(isRetryableError(serviceError('InvalidSignatureException', 400, {}))).toBe(false);
    const skew = serviceError('InvalidSignatureException', 400);
    (skew as unknown as { $metadata: Record<string, unknown> }).$metadata.clockSkewCorrected = true;
    expect(isRetryableError(skew)).toBe(true);
    expect(isRetryableError('a string')).toBe(false);
  });
});

describe('RetryingSecretsManagerClient', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('waits with full jitter: a random delay below an exponentially growing, capped ceiling', async () => {
    // With Math.random() at its maximum each wait equals the ceiling: 20, 40, 50 (cap), 50 ms.
    vi.spyOn(Math, 'random').mockReturnValue(0.999_999);
    const sm = new RetryingSecretsManagerClient({
      ...FAKE_AWS,
      retry: { maxAttempts: 5, baseDelayMs: 20, maxDelayMs: 50 },
    });
    const send = vi.fn(async () => {
      throw serviceError('ThrottlingException', 400);
    });
    answerAttempts(sm, send);

    const started = performance.now();
    await expect(sm.getSecretValue({ SecretId: 'x' })).rejects.toBeInstanceOf(SecretsManagerRequestError);
    const elapsed = performance.now() - started;

    expect(send).toHaveBeenCalledTimes(5);
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(1500);
    sm.close();
  });

  it('reports an unreachable endpoint readably after its retries', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));

    const sm = new RetryingSecretsManagerClient({
      ...FAKE_AWS,
      endpoint: `http://127.0.0.1:${port}`,
      retry: { maxAttempts: 3, baseDelayMs: 1 },
    });
    const error = await sm.getSecretValue({ SecretId: 'tess/master-key' }).catch((e: unknown) => e);
    sm.close();

    expect(error).toBeInstanceOf(SecretsManagerRequestError);
    expect((error as SecretsManagerRequestError).code).toBe('ECONNREFUSED');
    expect((error as Error).message).toMatch(
      /^Secrets Manager GetSecretValue on "tess\/master-key" failed after 3 attempts: ECONNREFUSED/,
    );
  });

  it('keeps one ClientRequestToken across the retries of a write', async () => {
    const sm = new RetryingSecretsManagerClient({ ...FAKE_AWS, retry: { maxAttempts: 3, baseDelayMs: 1 } });
    const tokens: unknown[] = [];
    let calls = 0;
    answerAttempts(sm, async (command) => {
      tokens.push(command.input.ClientRequestToken);
      if (++calls < 3) throw serviceError('ThrottlingException', 400);
      return { VersionId: command.input.ClientRequestToken };
    });

    const out = await sm.putSecretValue({ SecretId: 's', SecretString: 'v' });

    expect(tokens).toHaveLength(3);
    expect(new Set(tokens).size).toBe(1);
    expect(out.VersionId).toBe(tokens[0]);
    sm.close();
  });
});
