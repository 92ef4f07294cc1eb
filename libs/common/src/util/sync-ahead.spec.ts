import type { FileHandle } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { SyncAhead } from './sync-ahead.js';

/** A handle whose datasync the test settles by hand, counting the calls. */
function handle() {
  const pending: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  const fake = {
    datasync: () =>
      new Promise<void>((resolve, reject) => {
        pending.push({ resolve, reject });
      }),
  };
  return { fake: fake as unknown as FileHandle, pending };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('SyncAhead', () => {
  it('starts a sync every `every` bytes, never two at once', async () => {
    const { fake, pending } = handle();
    const ahead = new SyncAhead(fake, 100, 50);
    ahead.wrote(149);
    expect(pending).toHaveLength(0);
    ahead.wrote(150);
    expect(pending).toHaveLength(1);
    // Due again, but one is still running.
    ahead.wrote(400);
    expect(pending).toHaveLength(1);
    pending[0]!.resolve();
    await tick();
    // Counted from where the last sync started, not from the write it skipped.
    ahead.wrote(249);
    expect(pending).toHaveLength(1);
    ahead.wrote(250);
    expect(pending).toHaveLength(2);
    pending[1]!.resolve();
    await expect(ahead.drain()).resolves.toBeUndefined();
  });

  it('keeps the first background error for drain(); settled() waits without throwing', async () => {
    const { fake, pending } = handle();
    const ahead = new SyncAhead(fake, 10);
    ahead.wrote(10);
    let settled = false;
    const waiting = ahead.settled().then(() => {
      settled = true;
    });
    await tick();
    expect(settled).toBe(false);
    pending[0]!.reject(new Error('EIO: first'));
    await waiting;
    ahead.wrote(20);
    pending[1]!.reject(new Error('EIO: second'));
    await expect(ahead.drain()).rejects.toThrow('EIO: first');
  });
});
