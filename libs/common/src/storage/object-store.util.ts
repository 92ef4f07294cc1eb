import { Readable } from 'node:stream';

export const MiB = 1024 * 1024;

/** Stream chunks may be Buffers, other Uint8Arrays or (with setEncoding) strings; objects are a bug. */
export function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError(`Object store bodies must be byte streams, got a chunk of type ${typeof chunk}`);
}

/** Calls `onProgress` at most every `intervalMs`, plus once at the end with the final count. */
export class ProgressReporter {
  private lastAt = Number.NEGATIVE_INFINITY;
  private lastValue = -1;

  constructor(
    private readonly onProgress: ((bytes: number) => void) | undefined,
    private readonly intervalMs = 250,
  ) {}

  update(bytes: number): void {
    if (!this.onProgress) return;
    const now = performance.now();
    if (now - this.lastAt < this.intervalMs) return;
    this.lastAt = now;
    this.emit(bytes);
  }

  finish(bytes: number): void {
    if (this.onProgress && bytes !== this.lastValue) this.emit(bytes);
  }

  private emit(bytes: number): void {
    this.lastValue = bytes;
    this.onProgress?.(bytes);
  }
}

/** Checks the arguments of `getRange` before any I/O. */
export function assertRangeArguments(key: string, start: number, end: number | undefined): void {
  if (!Number.isSafeInteger(start) || start < 0) {
    throw new RangeError(`Range start for ${key} must be a non-negative integer, got ${start}`);
  }
  if (end !== undefined && (!Number.isSafeInteger(end) || end < start)) {
    throw new RangeError(`Range end for ${key} must be an integer >= start (${start}), got ${end}`);
  }
}

/**
 * Resolves a requested range against the object size: the inclusive last byte, or null for an empty
 * read at the very end (`start === size`). Throws a RangeError when `start` lies beyond the end.
 */
export function resolveRange(
  key: string,
  size: number,
  start: number,
  end: number | undefined,
): number | null {
  if (start > size) {
    throw new RangeError(`Range start ${start} is beyond the end of ${key} (${size} bytes)`);
  }
  if (start === size) return null;
  return Math.min(end ?? size - 1, size - 1);
}

export function emptyStream(): Readable {
  return Readable.from([], { objectMode: false });
}

/** The signal's reason as something throwable with a name (`AbortError` by default). */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}
