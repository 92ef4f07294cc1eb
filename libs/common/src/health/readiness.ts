import { withTimeout } from '../util/with-timeout.js';

/**
 * How long one readiness check may take before it counts as unavailable. Below the shortest
 * readiness probe timeout in k8s/base (3 s, the gateway's), so a hung dependency is answered as a
 * 503 naming it rather than as a probe timeout.
 */
export const READINESS_CHECK_TIMEOUT_MS = 2_000;

/** One dependency check: resolves when the dependency answers, rejects (with a reason) when not. */
export type ReadinessCheck = () => Promise<unknown>;

/** What `/readyz` reports: overall status and, per named check, `ok` or `unavailable: <reason>`. */
export interface ReadinessReport {
  status: 'ok' | 'unavailable';
  checks: Record<string, string>;
}

/**
 * Runs the named checks in parallel, each bounded by {@link READINESS_CHECK_TIMEOUT_MS}. Never
 * rejects: a failing or hung check is reported under its name, and the report is `unavailable`.
 */
export async function checkReadiness(checks: Record<string, ReadinessCheck>): Promise<ReadinessReport> {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await withTimeout(check(), READINESS_CHECK_TIMEOUT_MS);
        return [name, 'ok'] as const;
      } catch (error) {
        return [name, `unavailable: ${(error as Error).message}`] as const;
      }
    }),
  );
  return {
    status: results.every(([, result]) => result === 'ok') ? 'ok' : 'unavailable',
    checks: Object.fromEntries(results),
  };
}

/** The HTTP status for a readiness report: 200 when ready, 503 otherwise. */
export function readinessStatusCode(report: ReadinessReport): 200 | 503 {
  return report.status === 'ok' ? 200 : 503;
}
