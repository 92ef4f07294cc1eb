import { constants, PerformanceObserver } from 'node:perf_hooks';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { v8Collector, YoungGarbagePacer } from './young-garbage.js';

const MiB = 1024 * 1024;

describe('YoungGarbagePacer', () => {
  it('asks for one scavenge per threshold of released bytes, after the caller returns', async () => {
    const calls: string[] = [];
    const pacer = new YoungGarbagePacer(({ type }) => calls.push(type), 4 * MiB);
    pacer.released(3 * MiB);
    await nextTurn();
    expect(calls).toEqual([]);
    pacer.released(1 * MiB);
    // Not on the caller's stack: that still holds what it released.
    expect(calls).toEqual([]);
    // Crossings before the collection runs are one collection.
    pacer.released(9 * MiB);
    await nextTurn();
    expect(calls).toEqual(['minor']);
    expect(pacer.collections).toBe(1);
    // The count starts again after a collection.
    pacer.released(3 * MiB);
    await nextTurn();
    expect(calls).toEqual(['minor']);
    pacer.released(1 * MiB);
    await nextTurn();
    expect(calls).toEqual(['minor', 'minor']);
  });

  it('does nothing without a collector', async () => {
    const pacer = new YoungGarbagePacer(null, 1);
    pacer.released(100 * MiB);
    await nextTurn();
    expect(pacer.collections).toBe(0);
  });
});

describe('v8Collector', () => {
  it("runs a scavenge that frees dead buffers' memory, without putting gc on the global object", async () => {
    const collect = v8Collector();
    expect(collect).toBeTypeOf('function');
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    const kinds: number[] = [];
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries())
        kinds.push((entry as { detail?: { kind: number } }).detail?.kind ?? -1);
    });
    observer.observe({ entryTypes: ['gc'] });
    try {
      const before = process.memoryUsage().arrayBuffers;
      for (let i = 0; i < 16; i++) Buffer.allocUnsafeSlow(MiB).fill(i);
      const held = () => process.memoryUsage().arrayBuffers - before;
      collect!({ type: 'minor' });
      // Swept on a background thread once the scavenge found them dead.
      for (let i = 0; i < 100 && held() >= 4 * MiB; i++) await sleep(10);
      expect(held()).toBeLessThan(4 * MiB);
      await sleep(10);
      expect(kinds).toContain(constants.NODE_PERFORMANCE_GC_MINOR);
    } finally {
      observer.disconnect();
    }
  });
});
