import type { DataSource } from 'typeorm';

/**
 * Runs `run` while holding the PostgreSQL session advisory lock `key` (on a connection of the pool), or
 * returns null at once when another process holds it: for chores that one worker replica at a time does.
 */
export async function underTryLock<T>(
  dataSource: DataSource,
  key: number,
  run: () => Promise<T>,
): Promise<T | null> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    const [{ locked }] = (await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [key])) as [
      { locked: boolean },
    ];
    if (!locked) return null;
    try {
      return await run();
    } finally {
      await runner.query('SELECT pg_advisory_unlock($1)', [key]).catch(() => undefined);
    }
  } finally {
    await runner.release();
  }
}

/**
 * Runs `run` now and every `intervalMs`, never two at once in this process (a slow run skips ticks
 * instead of piling up); a failed run goes to `onError`. `stop()` ends the ticks and waits for a run.
 */
export function repeatEvery(
  intervalMs: number,
  run: () => Promise<unknown>,
  onError: (error: Error) => void,
): { stop(): Promise<void> } {
  let running: Promise<unknown> | undefined;
  const tick = (): void => {
    if (running) return;
    running = run()
      .catch(onError)
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  tick();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
