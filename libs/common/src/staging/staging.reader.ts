import { type FileHandle, open } from 'node:fs/promises';
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

/** What the frames of a staging file say, read without a key (nothing here is authenticated yet). */
export interface StagingLayout {
  recordSize: number;
  /** Complete data records. */
  dataRecords: number;
  /** Plaintext bytes in the complete data records: the staged length (the tus offset). */
  dataLength: number;
  /** File offset just past the last complete data record (where the next record goes). */
  dataEnd: number;
  /** Offset of the seal record, when there is one. */
  sealOffset: number | null;
  /** Offset of the last complete data record, null when there is none. */
  lastRecordStart: number | null;
  /** Bytes of an incomplete last frame (a write torn by a crash); 0 when the file ends on a frame. */
  tornBytes: number;
  /** File size. */
  size: number;
  /** Whether the walk started at a caller's resume point (verified) rather than at the first record. */
  fromResumePoint: boolean;
}

/**
 * Where the data records of a staging file ended when a writer last finished with it (the writer's
 * `resumePoint`), kept by the caller so the next resume or length lookup walks only what came after it
 * instead of every record. A hint, never trusted: `scanStaging` checks it against the file (the last
 * record's frame must end exactly at `dataEnd`) and falls back to the whole walk when it does not fit.
 */
export interface StagingResumePoint {
  dataRecords: number;
  dataLength: number;
  dataEnd: number;
  /** Offset of the last data record; null with no records. */
  lastRecordStart: number | null;
}

/**
 * What reading a staging file needs: positioned reads and its size. A FileHandle, or a small file read
 * whole (StagingReader.open).
 */
export interface StagingSource {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number }>;
}

/**
 * Staging files up to this size are read with one read when a reader opens them, and parsed from memory:
 * a small upload's header, record heads, seal and record are otherwise about ten reads of a few bytes.
 */
const READ_WHOLE_BELOW = 256 * 1024;

/** A file's bytes as a StagingSource. */
function inMemory(bytes: Buffer): StagingSource {
  return {
    async read(buffer, offset, length, position) {
      const bytesRead = Math.max(0, Math.min(length, bytes.length - position));
      bytes.copy(buffer, offset, position, position + bytesRead);
      return { bytesRead };
    },
    async stat() {
      return { size: bytes.length };
    },
  };
}

/** Reads `length` bytes at `position` (fewer only at the end of the file), into `into` when given. */
export async function readExactly(
  handle: StagingSource,
  length: number,
  position: number,
  into?: Buffer,
): Promise<Buffer> {
  const buffer = into ? into.subarray(0, length) : Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buffer : buffer.subarray(0, done);
}

/** Whether `point` can be where this file's data records end: one 5-byte read, no key needed. */
async function fitsFile(
  handle: StagingSource,
  point: StagingResumePoint,
  size: number,
  recordSize: number,
): Promise<boolean> {
  const { dataRecords, dataLength, dataEnd, lastRecordStart } = point;
  if (![dataRecords, dataLength, dataEnd].every(Number.isSafeInteger) || dataEnd > size) return false;
  if (dataRecords === 0)
    return dataEnd === STAGING_HEADER_LENGTH && dataLength === 0 && lastRecordStart === null;
  if (dataRecords < 0 || dataLength < dataRecords || dataLength > dataRecords * recordSize) return false;
  if (lastRecordStart === null || !Number.isSafeInteger(lastRecordStart)) return false;
  if (lastRecordStart < STAGING_HEADER_LENGTH || lastRecordStart + RECORD_HEAD_LENGTH > dataEnd) return false;
  const head = await readExactly(handle, RECORD_HEAD_LENGTH, lastRecordStart);
  try {
    const { length, kind } = checkRecordHead(head, recordSize, dataRecords - 1);
    return kind !== RECORD_SEAL && lastRecordStart + frameLength(length) === dataEnd;
  } catch {
    return false;
  }
}

/**
 * Walks the frames of an open staging file (5 bytes read per record). With `from`, a resume point that
 * fits the file, the walk starts there and reads only the records written after it (none, normally), so a
 * tus PATCH costs its own bytes rather than a read per record already staged.
 */
export async function scanStaging(
  handle: StagingSource,
  from?: StagingResumePoint | null,
): Promise<StagingLayout> {
  const size = (await handle.stat()).size;
  const { recordSize } = parseStagingHeader(await readExactly(handle, STAGING_HEADER_LENGTH, 0));
  const start = from && (await fitsFile(handle, from, size, recordSize)) ? from : null;
  let offset = start?.dataEnd ?? STAGING_HEADER_LENGTH;
  let dataRecords = start?.dataRecords ?? 0;
  let dataLength = start?.dataLength ?? 0;
  let lastRecordStart = start?.lastRecordStart ?? null;
  const fromResumePoint = start !== null;
  for (;;) {
    if (offset === size) break;
    if (size - offset < RECORD_HEAD_LENGTH) break;
    const head = await readExactly(handle, RECORD_HEAD_LENGTH, offset);
    const { length, kind } = checkRecordHead(head, recordSize, dataRecords);
    if (offset + frameLength(length) > size) break;
    if (kind === RECORD_SEAL) {
      const end = offset + frameLength(length);
      if (end !== size) {
        throw new StagingIntegrityError(
          'trailing-data',
          `${size - end} bytes follow the seal of the staging file`,
        );
      }
      return {
        recordSize,
        dataRecords,
        dataLength,
        dataEnd: offset,
        sealOffset: offset,
        lastRecordStart,
        tornBytes: 0,
        size,
        fromResumePoint,
      };
    }
    lastRecordStart = offset;
    dataRecords += 1;
    dataLength += length;
    offset += frameLength(length);
  }
  return {
    recordSize,
    dataRecords,
    dataLength,
    dataEnd: offset,
    sealOffset: null,
    lastRecordStart,
    tornBytes: size - offset,
    size,
    fromResumePoint,
  };
}

/**
 * The staged plaintext length from the file alone: the bytes in its complete data records (a torn last
 * record does not count). Structural only; the writer that resumes and the worker authenticate.
 */
export async function recoverLength(path: string, from?: StagingResumePoint | null): Promise<number> {
  const handle = await open(path, 'r');
  try {
    return (await scanStaging(handle, from)).dataLength;
  } finally {
    await handle.close();
  }
}

export interface StagingReaderOptions {
  dataKey: Buffer;
  fileId: string;
}

/**
 * A sealed staging file opened for reading: header authenticated, seal verified, total known. `readInto`
 * then yields the records' plaintext in order, each released only after its tag verified.
 */
export class StagingReader {
  private offset = STAGING_HEADER_LENGTH;
  private index = 0;
  private released = 0;
  private readonly scratches: Array<Buffer | undefined> = [undefined, undefined];
  private turn = 0;
  /** The next record's read, started while the current one is decrypted (prefetchNext). */
  private ahead?: { offset: number; length: number; read: Promise<Buffer> };
  /** The head of the record at `offset`, when the previous read brought it along. */
  private readonly head = Buffer.alloc(RECORD_HEAD_LENGTH);
  private headAhead = false;

  private constructor(
    private readonly handle: StagingSource,
    private readonly file: FileHandle | null,
    private readonly ctx: StagingContext,
    private readonly layout: StagingLayout,
  ) {}

  /** Opens `path`; throws StagingIntegrityError unless it is a sealed staging file of `fileId` under this key. */
  static async open(path: string, options: StagingReaderOptions): Promise<StagingReader> {
    let file: FileHandle | null = await open(path, 'r');
    let handle: StagingSource = file;
    try {
      const { size } = await file.stat();
      if (size < READ_WHOLE_BELOW) {
        // One read, then the file is closed: what is checked below is what is read later.
        handle = inMemory(await readExactly(file, size, 0));
        await file.close();
        file = null;
      }
      const header = await readExactly(handle, STAGING_HEADER_LENGTH, 0);
      parseStagingHeader(header);
      const ctx = openStagingContext(header, options.dataKey, options.fileId);
      const layout = await scanStaging(handle);
      if (layout.sealOffset === null) {
        throw new StagingIntegrityError(
          'unsealed',
          'the staged upload is not sealed (incomplete or truncated)',
        );
      }
      const head = await readExactly(handle, RECORD_HEAD_LENGTH, layout.sealOffset);
      const body = await readExactly(
        handle,
        SEAL_PLAINTEXT_LENGTH + RECORD_TAG_LENGTH,
        layout.sealOffset + RECORD_HEAD_LENGTH,
      );
      const total = Number(
        openRecord(
          ctx,
          layout.dataRecords,
          head,
          body,
          Buffer.alloc(SEAL_PLAINTEXT_LENGTH),
        ).readBigUInt64BE(),
      );
      if (total !== layout.dataLength) {
        throw new StagingIntegrityError(
          'length',
          `the seal says ${total} bytes but the records hold ${layout.dataLength}`,
        );
      }
      return new StagingReader(handle, file, ctx, layout);
    } catch (error) {
      await file?.close();
      throw error;
    }
  }

  /** Plaintext bytes of the sealed upload. */
  get length(): number {
    return this.layout.dataLength;
  }

  get recordSize(): number {
    return this.ctx.recordSize;
  }

  /** Bytes still to come. */
  get remaining(): number {
    return this.layout.dataLength - this.released;
  }

  /**
   * Decrypts the next data record into `into` (at least min(recordSize, remaining) bytes) and returns the
   * verified plaintext, or null once every record was read.
   */
  async readInto(into: Buffer): Promise<Buffer | null> {
    if (this.index === this.layout.dataRecords) return null;
    const head = this.head;
    if (!this.headAhead) await readExactly(this.handle, RECORD_HEAD_LENGTH, this.offset, head);
    const { length } = checkRecordHead(head, this.ctx.recordSize, this.index);
    if (length > into.length) throw new RangeError(`readInto needs ${length} bytes, got ${into.length}`);
    const bodyLength = length + RECORD_TAG_LENGTH;
    const read = await this.frameAt(this.offset + RECORD_HEAD_LENGTH, bodyLength + RECORD_HEAD_LENGTH);
    if (read.length !== bodyLength + RECORD_HEAD_LENGTH) {
      throw new StagingIntegrityError(
        'record-format',
        `staging record ${this.index} is cut short`,
        this.index,
      );
    }
    // This record's head authenticates it; the next one's came along at the end of the read.
    const current = Buffer.from(head);
    read.copy(head, 0, bodyLength);
    this.headAhead = true;
    this.offset += frameLength(length);
    this.prefetchNext();
    const plaintext = openRecord(this.ctx, this.index, current, read.subarray(0, bodyLength), into);
    this.index += 1;
    this.released += length;
    return plaintext;
  }

  /**
   * The body of the record at `offset` (and the head after it): the prefetched read when it is that one,
   * else a read now. Ciphertext is not secret: two scratch buffers serve every record, no allocation per
   * record, sized no bigger than the file needs (a fresh 1 MiB per small file is external memory V8
   * answers with full GCs).
   */
  private async frameAt(offset: number, length: number): Promise<Buffer> {
    const ahead = this.ahead;
    this.ahead = undefined;
    if (ahead?.offset === offset && ahead.length === length) return ahead.read;
    await ahead?.read.catch(() => undefined);
    return readExactly(this.handle, length, offset, this.takeScratch());
  }

  /** The scratch buffer not holding the record being decrypted (the second one made only when needed). */
  private takeScratch(): Buffer {
    const turn = this.turn;
    this.turn = 1 - turn;
    this.scratches[turn] ??= Buffer.allocUnsafe(
      Math.min(this.ctx.recordSize, this.layout.dataLength) + RECORD_TAG_LENGTH + RECORD_HEAD_LENGTH,
    );
    return this.scratches[turn];
  }

  /**
   * Starts reading the next data record while this one is decrypted (measured: the worker's main thread
   * otherwise waited for each record's read after decrypting the one before). Nothing is prefetched past
   * the data records or for a head that does not parse: the next readInto reads, or throws, as it would.
   */
  private prefetchNext(): void {
    const next = this.index + 1;
    if (next >= this.layout.dataRecords) return;
    let length: number;
    try {
      length = checkRecordHead(this.head, this.ctx.recordSize, next).length;
    } catch {
      return;
    }
    const offset = this.offset + RECORD_HEAD_LENGTH;
    const bytes = length + RECORD_TAG_LENGTH + RECORD_HEAD_LENGTH;
    const read = readExactly(this.handle, bytes, offset, this.takeScratch());
    // Its failure is the next readInto's to report (or nobody's, once the reader is closed).
    read.catch(() => undefined);
    this.ahead = { offset, length: bytes, read };
  }

  async close(): Promise<void> {
    this.ctx.recordKey.fill(0);
    // Never close the descriptor under a read still in flight.
    await this.ahead?.read.catch(() => undefined);
    this.ahead = undefined;
    await this.file?.close();
  }
}
