import { randomBytes } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { releaseBuffer } from '../util/release-buffer.js';
import { SyncAhead } from '../util/sync-ahead.js';
import { youngGarbage } from '../util/young-garbage.js';
import { type StagingLayout, type StagingResumePoint, scanStaging } from './staging.reader.js';
import {
  createStagingContext,
  DEFAULT_RECORD_SIZE,
  openStagingContext,
  RECORD_DATA,
  RECORD_HEAD_LENGTH,
  RECORD_SEAL,
  STAGING_HEADER_LENGTH,
  type StagingContext,
  sealPlaintext,
  sealRecord,
  verifyRecord,
} from './staging-format.js';
import { StagingIntegrityError } from './staging-integrity.error.js';

export interface StagingWriterOptions {
  path: string;
  fileId: string;
  /** The file's data key, or a promise of it (writes wait for it; the writer keeps only derived keys). */
  dataKey: Buffer | Promise<Buffer>;
  /** Plaintext bytes per full record (default 1 MiB). */
  recordSize?: number;
  /** Write the seal record when the stream ends (default true); false leaves the file open for appends. */
  sealOnEnd?: boolean;
  /**
   * Every this many bytes written, start an fdatasync in the background (one at a time), so the fsync at
   * the end has only the tail left to write back rather than everything the stream wrote (the page cache
   * of a large write is otherwise all written back then). The end waits for it; its error fails the stream.
   */
  syncAhead?: number;
  /**
   * resume only: where the previous writer left the file (its `resumePoint`), so opening checks the last
   * record there instead of walking every record; checked against the file, the whole walk when it does not fit.
   */
  resumeFrom?: StagingResumePoint | null;
  /**
   * The written chunks are the writer's to free: once a chunk is sealed into a record, its memory is released
   * at once (util/release-buffer.ts) instead of at V8's next full garbage collection. Only for a producer that
   * never touches a chunk again once written: a request body piped straight in (a tus PATCH), whose 64 KiB
   * socket reads are otherwise hundreds of MB per second of external memory for a large heap to collect.
   */
  releaseInput?: boolean;
}

interface Position {
  ctx: StagingContext;
  handle: FileHandle;
  offset: number;
  index: number;
  length: number;
  /** Offset of the last data record written, null before the first. */
  lastRecordStart: number | null;
  /** The header of a new file that seals on end, not written yet: it goes with the first records. */
  header: Buffer | null;
}

/** One record to seal and append. */
interface PendingRecord {
  kind: typeof RECORD_DATA | typeof RECORD_SEAL;
  pieces: Buffer[];
  /** Plaintext bytes it adds to the file's length. */
  plaintext: number;
}

/**
 * Writes plaintext into a staging file as authenticated records, never a plaintext byte to disk. A
 * Writable, so `pipeline(busboyFileStream, writer)` gets backpressure; memory is about one record.
 *
 * `create` starts a new file (`wx`, mode 0600); `resume` reopens an unsealed one, drops a torn last record
 * and continues with the next record index (the staged length is `plaintextBytes` once open). Either way
 * the end of the stream flushes the buffered tail as a record and, with `sealOnEnd`, seals the file.
 * The caller removes the file on failure.
 */
export class StagingWriter extends Writable {
  private position?: Position;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private recordSize: number;
  private sealed = false;
  /** Background write-back while the stream writes (the `syncAhead` option). */
  private ahead?: SyncAhead;

  private constructor(
    private readonly options: StagingWriterOptions,
    private readonly mode: 'create' | 'resume',
  ) {
    super({ highWaterMark: options.recordSize ?? DEFAULT_RECORD_SIZE });
    this.recordSize = options.recordSize ?? DEFAULT_RECORD_SIZE;
  }

  static create(options: StagingWriterOptions): StagingWriter {
    return new StagingWriter(options, 'create');
  }

  /** Reopens an unsealed staging file; `await writer.ready()` to learn the recovered length. */
  static resume(options: Omit<StagingWriterOptions, 'recordSize'>): StagingWriter {
    return new StagingWriter(options, 'resume');
  }

  /** Plaintext bytes in the file and in this writer's buffer. */
  get plaintextBytes(): number {
    return (this.position?.length ?? 0) + this.pendingBytes;
  }

  /**
   * Where the data records end (the next resume's `resumeFrom`): meaningful once the stream has finished,
   * when nothing is buffered any more.
   */
  get resumePoint(): StagingResumePoint | null {
    const position = this.position;
    if (!position || this.sealed) return null;
    return {
      dataRecords: position.index,
      dataLength: position.length,
      dataEnd: position.offset,
      lastRecordStart: position.lastRecordStart,
    };
  }

  /** Resolves once the file is open (with the recovered length when resuming). */
  ready(): Promise<number> {
    if (this.position) return Promise.resolve(this.position.length);
    return new Promise((resolve, reject) => {
      const onReady = () => {
        this.off('error', reject);
        resolve(this.position?.length ?? 0);
      };
      this.once('ready', onReady);
      this.once('error', reject);
    });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.openFile().then(
      (position) => {
        this.position = position;
        if (this.options.syncAhead)
          this.ahead = new SyncAhead(position.handle, this.options.syncAhead, position.offset);
        callback();
        this.emit('ready');
      },
      (error: Error) => callback(error),
    );
  }

  private async openFile(): Promise<Position> {
    const dataKey = await this.options.dataKey;
    if (this.mode === 'create') {
      const ctx = createStagingContext(
        { recordSize: this.recordSize, fileId: this.options.fileId, noncePrefix: randomBytes(7) },
        dataKey,
      );
      const handle = await open(this.options.path, 'wx', 0o600);
      const position = {
        ctx,
        handle,
        offset: STAGING_HEADER_LENGTH,
        index: 0,
        length: 0,
        lastRecordStart: null,
      };
      // A file that seals on end is never resumed: its header can wait for its first records (a small
      // file is then one write: header, data, seal), since the fsync at the end covers them all.
      if (this.options.sealOnEnd ?? true) return { ...position, header: ctx.header };
      try {
        await handle.write(ctx.header, 0, ctx.header.length, 0);
      } catch (error) {
        await handle.close();
        throw error;
      }
      return { ...position, header: null };
    }
    const handle = await open(this.options.path, 'r+');
    try {
      const header = Buffer.alloc(STAGING_HEADER_LENGTH);
      await handle.read(header, 0, header.length, 0);
      const ctx = openStagingContext(header, dataKey, this.options.fileId);
      const layout = await this.recover(handle, ctx);
      // A crash mid-write leaves at most one incomplete record: drop it.
      if (layout.tornBytes > 0) await handle.truncate(layout.dataEnd);
      this.recordSize = ctx.recordSize;
      return {
        ctx,
        handle,
        offset: layout.dataEnd,
        index: layout.dataRecords,
        length: layout.dataLength,
        lastRecordStart: layout.lastRecordStart,
        header: null,
      };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /**
   * The layout to append to: walked from the resume point when one fits (else from the first record), and
   * its last record authenticated. A resume point whose record does not authenticate is dropped for the
   * whole walk, so a wrong hint can cost time but never change what is recovered.
   */
  private async recover(handle: FileHandle, ctx: StagingContext): Promise<StagingLayout> {
    let layout = await scanStaging(handle, this.options.resumeFrom);
    if (layout.sealOffset !== null) {
      throw new StagingIntegrityError('sealed', 'the staging file is sealed; nothing can be appended');
    }
    try {
      await this.verifyLastRecord(handle, ctx, layout);
    } catch (error) {
      if (!layout.fromResumePoint) throw error;
      layout = await scanStaging(handle);
      await this.verifyLastRecord(handle, ctx, layout);
    }
    return layout;
  }

  /** The record before the append point must be authentic, or appending would extend a forged file. */
  private async verifyLastRecord(
    handle: FileHandle,
    ctx: StagingContext,
    layout: StagingLayout,
  ): Promise<void> {
    const start = layout.lastRecordStart;
    if (layout.dataRecords === 0 || start === null) return;
    const frame = Buffer.alloc(layout.dataEnd - start);
    await handle.read(frame, 0, frame.length, start);
    const head = frame.subarray(0, RECORD_HEAD_LENGTH);
    verifyRecord(ctx, layout.dataRecords - 1, head, frame.subarray(RECORD_HEAD_LENGTH));
    releaseBuffer(frame);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.recordSize) {
      callback();
      return;
    }
    this.flushFull().then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finish().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.pending = [];
    this.pendingBytes = 0;
    const position = this.position;
    if (!position) {
      callback(error);
      return;
    }
    position.ctx.recordKey.fill(0);
    // Never close a descriptor a background sync still uses.
    const close = () => position.handle.close();
    Promise.resolve(this.ahead?.settled())
      .then(close)
      .then(
        () => callback(error),
        () => callback(error),
      );
  }

  /** The chunk each pending remainder was cut from (releaseInput). */
  private readonly origins = new WeakMap<Buffer, Buffer>();

  private async flushFull(): Promise<void> {
    while (this.pendingBytes >= this.recordSize) {
      const pieces: Buffer[] = [];
      let need = this.recordSize;
      while (need > 0) {
        const head = this.pending[0]!;
        if (head.length <= need) {
          pieces.push(head);
          this.pending.shift();
          need -= head.length;
        } else {
          pieces.push(head.subarray(0, need));
          const rest = head.subarray(need);
          // The rest is the chunk's last part: once it is consumed, the whole chunk may go (releaseInput).
          this.origins.set(rest, this.origins.get(head) ?? head);
          this.pending[0] = rest;
          need = 0;
        }
      }
      this.pendingBytes -= this.recordSize;
      await this.append([{ kind: RECORD_DATA, pieces, plaintext: this.recordSize }]);
    }
  }

  private async finish(): Promise<void> {
    await this.flushFull();
    const records: PendingRecord[] = [];
    if (this.pendingBytes > 0) {
      records.push({ kind: RECORD_DATA, pieces: this.pending, plaintext: this.pendingBytes });
      this.pending = [];
      this.pendingBytes = 0;
    }
    const position = this.position!;
    if (this.options.sealOnEnd ?? true) {
      const total = position.length + (records[0]?.plaintext ?? 0);
      records.push({ kind: RECORD_SEAL, pieces: [sealPlaintext(total)], plaintext: 0 });
    }
    // The last data record and the seal in one write (with the header too, for a file of one record).
    if (records.length > 0) await this.append(records);
    // Linux reports a writeback error once: the one a background sync saw is the stream's failure.
    await this.ahead?.drain();
    await position.handle.sync();
  }

  /** Seals `records` in order and writes them in one writev (after the deferred header, if any). */
  private async append(records: PendingRecord[]): Promise<void> {
    const position = this.position!;
    const frames: Buffer[] = position.header ? [position.header] : [];
    const at = position.header ? 0 : position.offset;
    const starts: number[] = [];
    let end = position.offset;
    records.forEach((record, i) => {
      starts.push(end);
      const frame = sealRecord(position.ctx, position.index + i, record.kind, record.pieces);
      frames.push(...frame);
      end += frame.reduce((sum, b) => sum + b.length, 0);
    });
    const bytes = end - at;
    let written = 0;
    while (written < bytes) {
      const rest = written === 0 ? frames : [Buffer.concat(frames).subarray(written)];
      written += (await position.handle.writev(rest, at + written)).bytesWritten;
    }
    // The frames' ciphertext is ours alone and written: free it now, not at V8's next full GC.
    for (const buffer of frames) if (buffer !== position.header) releaseBuffer(buffer);
    position.header = null;
    // A piece taken whole is the end of its chunk: the chunk itself, or the last part of one split between
    // records (its earlier parts are sealed already). A view into a buffer of the producer's own is left alone
    // by releaseBuffer, which frees only a Buffer spanning its whole ArrayBuffer.
    if (this.options.releaseInput) {
      for (const { pieces } of records) {
        for (const piece of pieces) releaseBuffer(this.origins.get(piece) ?? piece);
      }
    }
    records.forEach((record, i) => {
      if (record.kind === RECORD_DATA) position.lastRecordStart = starts[i]!;
      else this.sealed = true;
      position.index += 1;
      position.length += record.plaintext;
    });
    position.offset = end;
    this.ahead?.wrote(end);
    // The pieces are garbage now, views into socket reads V8 would hold until its next full GC.
    youngGarbage().released(records.reduce((sum, record) => sum + record.plaintext, 0));
  }
}
