import { type FileHandle, open, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { readExactly, type StagingReaderOptions } from './staging.reader.js';
import {
  checkRecordHead,
  frameLength,
  openRecord,
  openStagingContext,
  parseStagingHeader,
  RECORD_HEAD_LENGTH,
  RECORD_SEAL,
  RECORD_TAG_LENGTH,
  SEAL_PLAINTEXT_LENGTH,
  STAGING_HEADER_LENGTH,
  type StagingContext,
} from './staging-format.js';
import { StagingIntegrityError } from './staging-integrity.error.js';

/** Why a follower stopped before the seal: never a verdict on the upload, only the end of following it. */
export type FollowStopReason =
  /** No new byte for `idleMs` (a paused resumable upload, a gateway that died). */
  | 'idle'
  /** The staging file is gone or was replaced (the upload was refused, cancelled or expired). */
  | 'removed'
  /** The file shrank, or what was read is no longer what the file holds (a resumable upload rewrote its tail). */
  | 'changed'
  /** The caller's signal (its lock was lost, the worker shuts down). */
  | 'aborted';

export class StagingFollowStopped extends Error {
  override readonly name = 'StagingFollowStopped';
  constructor(
    readonly reason: FollowStopReason,
    detail: string,
  ) {
    super(`stopped following the staged upload: ${detail}`);
  }
}

export interface StagingFollowOptions extends StagingReaderOptions {
  /** Give up after this long without growth. */
  idleMs: number;
  /**
   * How soon to look for growth once starved (a stat of the handle and of the path); each look that finds
   * none doubles the pause, up to `maxPollMs`, so a follower of a slow or paused client costs next to
   * nothing while one of a fast client reacts within a few milliseconds.
   */
  pollMs: number;
  maxPollMs: number;
  signal?: AbortSignal;
}

/** What a follower remembers of each record it released: its head and tag, checked again by `confirm`. */
const PRINT = RECORD_HEAD_LENGTH + RECORD_TAG_LENGTH;

/**
 * A staging file read while it is still being written (pipelined uploads, docs/format.md "Following a
 * staging file"): the reader's contract (header authenticated first, each record released only after its
 * tag verified, the same StagingIntegrityError codes) except that the end of the available bytes means
 * "wait" rather than "unsealed". `readInto` returns null once an authenticated seal whose total matches
 * the records was read. Nothing a follower read is final until `confirm` (after the writer is done for
 * good) found every released record's head and tag, and the seal, still where they were read, with nothing
 * after the seal: a resumable upload may truncate and rewrite its tail while it is followed.
 */
export class StagingFollower {
  private offset = STAGING_HEADER_LENGTH;
  private index = 0;
  private released = 0;
  private sealEnd: number | null = null;
  private readonly head = Buffer.alloc(RECORD_HEAD_LENGTH);
  private scratch?: Buffer;
  /** Heads and tags of the released records, then the seal frame; `printed` bytes used. */
  private prints = Buffer.alloc(64 * PRINT);
  private printed = 0;
  /** File size at the last look, and when it last grew. */
  private size = 0;
  private grewAt = Date.now();

  private constructor(
    private readonly handle: FileHandle,
    private readonly ino: number,
    private readonly path: string,
    private readonly options: StagingFollowOptions,
    private ctx?: StagingContext,
  ) {}

  /** Opens `path` and authenticates its header (waiting for it if needed). */
  static async open(path: string, options: StagingFollowOptions): Promise<StagingFollower> {
    const handle = await open(path, 'r');
    try {
      const follower = new StagingFollower(handle, (await handle.stat()).ino, path, options);
      await follower.waitFor(STAGING_HEADER_LENGTH);
      const header = await readExactly(handle, STAGING_HEADER_LENGTH, 0);
      parseStagingHeader(header);
      follower.ctx = openStagingContext(header, options.dataKey, options.fileId);
      return follower;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  get recordSize(): number {
    return this.ctx!.recordSize;
  }

  /** Plaintext bytes released so far. */
  get length(): number {
    return this.released;
  }

  /** Whether the next frame is complete in the file already (a read now would not wait). */
  async ready(): Promise<boolean> {
    if (this.sealEnd !== null) return true;
    // A frame the last look already covers needs no new one (a look is an fstat, several per record).
    if (this.size < this.offset + frameLength(this.recordSize)) await this.look();
    if (this.size < this.offset + RECORD_HEAD_LENGTH) return false;
    const head = await readExactly(this.handle, RECORD_HEAD_LENGTH, this.offset, this.head);
    if (head.length !== RECORD_HEAD_LENGTH)
      throw new StagingFollowStopped('changed', 'the staging file shrank');
    const { length } = checkRecordHead(head, this.recordSize, this.index);
    return this.size >= this.offset + frameLength(length);
  }

  /**
   * Decrypts the next data record into `into` (at least recordSize bytes) once it is complete in the file
   * and returns its verified plaintext; null after the authenticated seal.
   */
  async readInto(into: Buffer): Promise<Buffer | null> {
    if (this.sealEnd !== null) return null;
    const ctx = this.ctx!;
    await this.waitFor(this.offset + RECORD_HEAD_LENGTH);
    const head = await readExactly(this.handle, RECORD_HEAD_LENGTH, this.offset, this.head);
    if (head.length !== RECORD_HEAD_LENGTH)
      throw new StagingFollowStopped('changed', 'the staging file shrank');
    const { length, kind } = checkRecordHead(head, ctx.recordSize, this.index);
    if (length > into.length) throw new RangeError(`readInto needs ${length} bytes, got ${into.length}`);
    const end = this.offset + frameLength(length);
    await this.waitFor(end);
    this.scratch ??= Buffer.allocUnsafe(ctx.recordSize + RECORD_TAG_LENGTH);
    const bodyLength = length + RECORD_TAG_LENGTH;
    const body = await readExactly(this.handle, bodyLength, this.offset + RECORD_HEAD_LENGTH, this.scratch);
    if (body.length !== bodyLength) throw new StagingFollowStopped('changed', 'the staging file shrank');
    if (kind === RECORD_SEAL) {
      const total = Number(
        openRecord(ctx, this.index, head, body, Buffer.alloc(SEAL_PLAINTEXT_LENGTH)).readBigUInt64BE(),
      );
      if (total !== this.released) {
        throw new StagingIntegrityError(
          'length',
          `the seal says ${total} bytes but the records hold ${this.released}`,
        );
      }
      this.remember(head, body.subarray(length));
      this.sealEnd = end;
      await this.look();
      this.checkNothingAfterSeal();
      return null;
    }
    const plaintext = openRecord(ctx, this.index, head, body, into);
    this.remember(head, body.subarray(length));
    this.index += 1;
    this.offset = end;
    this.released += length;
    return plaintext;
  }

  /**
   * Once the writer is done for good (the upload was accepted): every released record's head and tag and
   * the seal are still where they were read and nothing follows the seal, so what was released is exactly
   * the sealed file. Throws StagingFollowStopped('changed') otherwise.
   */
  async confirm(): Promise<void> {
    if (this.sealEnd === null) throw new StagingFollowStopped('changed', 'the seal was not read');
    const seen = Buffer.alloc(PRINT);
    let offset = STAGING_HEADER_LENGTH;
    for (let at = 0; at < this.printed; at += PRINT) {
      const length = this.prints.readUInt32BE(at);
      await readExactly(this.handle, RECORD_HEAD_LENGTH, offset, seen);
      await readExactly(
        this.handle,
        RECORD_TAG_LENGTH,
        offset + RECORD_HEAD_LENGTH + length,
        seen.subarray(RECORD_HEAD_LENGTH),
      );
      if (!seen.equals(this.prints.subarray(at, at + PRINT))) {
        throw new StagingFollowStopped('changed', `staging record ${at / PRINT} was rewritten`);
      }
      offset += frameLength(length);
    }
    await this.look();
    this.checkNothingAfterSeal();
  }

  async close(): Promise<void> {
    this.ctx?.recordKey.fill(0);
    await this.handle.close();
  }

  private checkNothingAfterSeal(): void {
    if (this.size === this.sealEnd) return;
    if (this.size < this.sealEnd!) throw new StagingFollowStopped('changed', 'the staging file shrank');
    throw new StagingIntegrityError(
      'trailing-data',
      `${this.size - this.sealEnd!} bytes follow the seal of the staging file`,
    );
  }

  private remember(head: Buffer, tag: Buffer): void {
    if (this.printed + PRINT > this.prints.length) {
      const grown = Buffer.alloc(this.prints.length * 2);
      this.prints.copy(grown, 0, 0, this.printed);
      this.prints = grown;
    }
    head.copy(this.prints, this.printed);
    tag.copy(this.prints, this.printed + RECORD_HEAD_LENGTH);
    this.printed += PRINT;
  }

  /** The file's current size; a file that shrank was rewritten under us. */
  private async look(): Promise<void> {
    const { size } = await this.handle.stat();
    if (size < this.size) throw new StagingFollowStopped('changed', 'the staging file shrank');
    if (size > this.size) this.grewAt = Date.now();
    this.size = size;
  }

  /** Waits until the file holds `end` bytes, or stops following (idle, removed, aborted). */
  private async waitFor(end: number): Promise<void> {
    // Bytes the last look saw are there still, or a read finds them gone (a short read is 'changed', and
    // `confirm` looks again): a record inside them is read without another fstat.
    if (this.size >= end) return;
    const { idleMs, pollMs, maxPollMs, signal } = this.options;
    for (let pause = pollMs; ; pause = Math.min(pause * 2, maxPollMs)) {
      if (signal?.aborted) throw new StagingFollowStopped('aborted', String(signal.reason ?? 'aborted'));
      await this.look();
      if (this.size >= end) return;
      const info = await stat(this.path).catch(() => null);
      if (!info || info.ino !== this.ino) {
        throw new StagingFollowStopped('removed', 'the staging file was removed');
      }
      if (Date.now() - this.grewAt > idleMs) {
        throw new StagingFollowStopped('idle', `no new bytes for ${idleMs} ms`);
      }
      await sleep(pause, undefined, { signal }).catch(() => undefined);
    }
  }
}
