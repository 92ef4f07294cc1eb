import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkReadiness, READINESS_CHECK_TIMEOUT_MS, readinessStatusCode } from './readiness.js';

describe('checkReadiness', () => {
  afterEach(() => vi.useRealTimers());

  it('is ok (200) when every check answers', async () => {
    const report = await checkReadiness({ database: async () => 1, redis: async () => 'PONG' });
    expect(report).toEqual({ status: 'ok', checks: { database: 'ok', redis: 'ok' } });
    expect(readinessStatusCode(report)).toBe(200);
  });

  it('names the failing check and its reason (503), also for a check that throws synchronously', async () => {
    const report = await checkReadiness({
      database: async () => 1,
      redis: async () => {
        throw new Error('connection refused');
      },
      objectStore: () => {
        throw new Error('no bucket');
      },
    });
    expect(report).toEqual({
      status: 'unavailable',
      checks: {
        database: 'ok',
        redis: 'unavailable: connection refused',
        objectStore: 'unavailable: no bucket',
      },
    });
    expect(readinessStatusCode(report)).toBe(503);
  });

  it('reports a hung check as unavailable after the one timeout', async () => {
    vi.useFakeTimers();
    const pending = checkReadiness({ keys: () => new Promise(() => undefined) });
    await vi.advanceTimersByTimeAsync(READINESS_CHECK_TIMEOUT_MS);
    expect(await pending).toEqual({
      status: 'unavailable',
      checks: { keys: `unavailable: timed out after ${READINESS_CHECK_TIMEOUT_MS} ms` },
    });
  });
});
