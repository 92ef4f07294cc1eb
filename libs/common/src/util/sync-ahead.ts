import type { FileHandle } from 'node:fs/promises';

/**
 * Writes a file's dirty pages back while it is still being written: after every `every` bytes an fdatasync
 * starts in the background, one at a time, so the fsync that makes the file durable at its end has only the
 * tail left to write back (the page cache of a large write is otherwise all written back then).
 *
 * Linux reports a writeback error to one sync only: the first error a background sync saw is kept and
 * thrown by `drain()`, so the final fsync's success never hides it.
 */
export class SyncAhead {
  private inFlight?: Promise<void>;
  private error: unknown;
  private syncedTo: number;

  /** `from`: the offset already durable or not worth syncing (a resumed file's previous end). */
  constructor(
    private readonly handle: FileHandle,
    private readonly every: number,
    from = 0,
  ) {
    this.syncedTo = from;
  }

  /** The file is now written up to `offset`: starts a background fdatasync when one is due and none runs. */
  wrote(offset: number): void {
    if (this.inFlight || offset - this.syncedTo < this.every) return;
    this.syncedTo = offset;
    this.inFlight = this.handle
      .datasync()
      .catch((error: unknown) => {
        this.error ??= error;
      })
      .finally(() => {
        this.inFlight = undefined;
      });
  }

  /** Waits for the sync in flight, if any; never rejects (for closing the descriptor after an error). */
  async settled(): Promise<void> {
    await this.inFlight;
  }

  /** Waits for the sync in flight and throws the first error any background sync saw. */
  async drain(): Promise<void> {
    await this.inFlight;
    if (this.error) throw this.error;
  }
}
