import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes of short-lived buffers between two young-generation collections (measured, see below). */
export const DEFAULT_RECLAIM_EVERY = 16 * 1024 * 1024;

type Collect = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

/**
 * Frees the memory of short-lived buffers that cannot be released by hand, by asking V8 for a
 * young-generation collection (a scavenge) after every `every` bytes of them.
 *
 * Why: an upload arrives as socket reads, each a fresh off-heap ArrayBuffer. A multipart upload's file
 * pieces are busboy's views into them, and one read can hold the end of one file, a boundary and the
 * start of the next, so no single writer may free it (releaseBuffer). V8 frees a dead ArrayBuffer's
 * memory only when it collects its small JS object, and it learns how much memory that is only in 64 MiB
 * steps of external memory, each answered with a full mark-compact of the whole heap (--trace-gc: about
 * one every 150-250 ms during a 512 MiB upload, 10-20 ms each plus 20-40 ms of incremental marking).
 * Those objects all die young, so a scavenge every 16 MiB (about 1 ms with the gateway's 8 MiB
 * semi-spaces, scripts/runtime-env.mjs) frees them before the mark-compacts come round. Measured with
 * bench/gateway-memory.mjs (docs/benchmarks.md): a 512 MiB multipart upload's peak RSS fell from about
 * 229 to 188 MiB and its gateway CPU from 3.4 to 1.7 s.
 *
 * Node has no API for a scavenge; V8's `gc()` extension is the only way. It is taken from a throwaway
 * context (the flag is set only while that context is made), so `gc` never appears on the process's
 * global object for other code to call. Where V8 refuses (a runtime without the extension), pacing is a
 * no-op and V8 collects as it always did.
 */
export class YoungGarbagePacer {
  private pending = 0;
  private scheduled = false;
  /** Collections run (for tests and metrics). */
  collections = 0;

  constructor(
    private readonly collect: Collect | null,
    private readonly every = DEFAULT_RECLAIM_EVERY,
  ) {}

  /** Notes `bytes` of buffers that became garbage; schedules one scavenge per `every` bytes. */
  released(bytes: number): void {
    if (!this.collect) return;
    this.pending += bytes;
    if (this.pending < this.every || this.scheduled) return;
    this.scheduled = true;
    // Not now: the caller's stack still references what it just released.
    setImmediate(() => {
      this.scheduled = false;
      this.pending = 0;
      this.collections += 1;
      this.collect?.({ type: 'minor' });
    });
  }
}

/** V8's collector, or null where the runtime does not offer it. */
export function v8Collector(): Collect | null {
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return own as Collect;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** The process's pacer (created on first use). */
let shared: YoungGarbagePacer | undefined;
export function youngGarbage(): YoungGarbagePacer {
  shared ??= new YoungGarbagePacer(v8Collector());
  return shared;
}
