/**
 * Streaming, verifying decryption of v1 objects.
 *
 * Invariants: plaintext of a segment is emitted only after its GCM tag has verified; the header MAC
 * is verified (committing to the data key) before any segment is opened; the object's final segment
 * is opened with the last-segment flag, every other with the flag clear, so dropped, appended,
 * reordered and duplicated segments all fail a tag. Any failure is an IntegrityError.
 */
import { createDecipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { releaseBuffer } from '../util/release-buffer.js';
import { secretKey } from '../util/secret-key.js';
import { IntegrityError } from './integrity.error.js';
import {
  CIPHER_PIECE_LENGTH,
  DEFAULT_SEGMENT_SIZE,
  HEADER_PREFIX_LENGTH,
  headerLengthFromPrefix,
  NONCE_LENGTH,
  type ObjectHeader,
  type OpenedHeader,
  openHeader,
  parseHeader,
  TAG_LENGTH,
  type VerifyHeaderOptions,
  writeSegmentNonce,
} from './object-header.js';
import { describeObject, MAX_SEGMENTS, plaintextSegmentSize } from './segment-layout.js';

/** Inputs for {@link createDecryptStream}: a ranged (or whole) read of an object's segments. */
export interface DecryptOptions {
  /** The object's complete header (as fetched separately), MAC included. */
  headerBytes: Buffer;
  /** The unwrapped data key. */
  dataKey: Buffer;
  /** Length of the whole object (header included), e.g. from the object store's stat. */
  ciphertextLength: number;
  /** When set, the header must name this file id (detects swapped objects). */
  fileId?: string;
  /** First segment whose ciphertext the input starts with; defaults to 0. */
  firstSegment?: number;
  /** Last segment the input contains; defaults to the object's last segment. */
  lastSegment?: number;
  /** Plaintext bytes to drop from the start of `firstSegment`; defaults to 0. */
  skip?: number;
  /** Plaintext bytes to emit after `skip`; defaults to everything. */
  take?: number;
  /**
   * Frees each input chunk (one that spans its whole ArrayBuffer, see releaseBuffer) once it has been
   * decrypted, instead of at V8's next collection: for a source whose chunks nothing else holds, such as
   * an object store's read stream. The writer must not use a chunk after writing it.
   */
  releaseInput?: boolean;
}

/** Inputs for {@link createObjectDecryptStream}: a read of the whole object, header first. */
export interface ObjectDecryptOptions {
  /** Returns the data key for the parsed (not yet authenticated) header, typically by unwrapping `wrappedKey`. */
  getDataKey: (header: ObjectHeader) => Buffer | Promise<Buffer>;
  /** When set, the header must name this file id (detects swapped objects). */
  fileId?: string;
}

interface SegmentPlan {
  firstSegment: number;
  /** Last segment to read, or null when the end of the input decides (whole-object mode). */
  lastSegment: number | null;
  /** The object's last segment and its ciphertext length, when the object length is known. */
  objectLastSegment: number | null;
  objectLastSegmentLength: number;
  skip: number;
  take: number;
}

/** The decrypting state machine shared by both streams; throws IntegrityError on any failure. */
class SegmentDecryptor {
  private readonly segmentSize: number;
  private readonly nonce = Buffer.alloc(NONCE_LENGTH);
  private pending: Buffer | null = null;
  private filled = 0;
  private index: number;
  private skip: number;
  private take: number;
  emitted = 0;

  constructor(
    private readonly opened: OpenedHeader,
    private readonly plan: SegmentPlan,
    private readonly emit: (plaintext: Buffer) => void,
  ) {
    this.segmentSize = opened.header.segmentSize;
    this.index = plan.firstSegment;
    this.skip = plan.skip;
    this.take = plan.take;
  }

  write(chunk: Buffer): void {
    const known = this.plan.lastSegment !== null;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.plan.lastSegment !== null && this.index > this.plan.lastSegment) {
        throw new IntegrityError('trailing-data', 'Ciphertext continues after the expected last segment');
      }
      const need = this.expectedLength();
      if (this.filled === need) {
        // Whole-object mode: a buffered full segment followed by more input is not the last one.
        this.open(this.buffer().subarray(0, need), false);
        this.filled = 0;
        continue;
      }
      const available = chunk.length - offset;
      if (this.filled === 0 && (known ? available >= need : available > need)) {
        this.open(chunk.subarray(offset, offset + need), known && this.index === this.plan.objectLastSegment);
        offset += need;
        continue;
      }
      const n = Math.min(need - this.filled, available);
      chunk.copy(this.buffer(), this.filled, offset, offset + n);
      this.filled += n;
      offset += n;
      if (known && this.filled === need) {
        this.open(this.buffer().subarray(0, need), this.index === this.plan.objectLastSegment);
        this.filled = 0;
      }
    }
  }

  end(): void {
    try {
      if (this.plan.lastSegment !== null) {
        if (this.index <= this.plan.lastSegment) {
          throw new IntegrityError(
            'truncated',
            `Ciphertext ended in segment ${this.index}, expected segments up to ${this.plan.lastSegment}`,
            this.index,
          );
        }
        return;
      }
      if (this.filled < TAG_LENGTH) {
        throw new IntegrityError(
          this.filled === 0 && this.index === 0 ? 'truncated' : 'length',
          `Object ends with a ${this.filled}-byte segment, shorter than a tag`,
          this.index,
        );
      }
      if (this.filled === TAG_LENGTH && this.index > 0) {
        throw new IntegrityError(
          'length',
          'Object ends with an empty segment after full segments',
          this.index,
        );
      }
      this.open(this.buffer().subarray(0, this.filled), true);
    } finally {
      this.pending?.fill(0);
      this.pending = null;
      this.filled = 0;
    }
  }

  private expectedLength(): number {
    return this.index === this.plan.objectLastSegment ? this.plan.objectLastSegmentLength : this.segmentSize;
  }

  private buffer(): Buffer {
    this.pending ??= Buffer.allocUnsafe(this.segmentSize);
    return this.pending;
  }

  private open(segment: Buffer, last: boolean): void {
    const index = this.index;
    if (index >= MAX_SEGMENTS) {
      throw new IntegrityError('length', `Object has more than ${MAX_SEGMENTS} segments`, index);
    }
    const { header, segmentKey, aad } = this.opened;
    const nonce = writeSegmentNonce(this.nonce, header.noncePrefix, index, last);
    const decipher = createDecipheriv('aes-256-gcm', secretKey(segmentKey), nonce, {
      authTagLength: TAG_LENGTH,
    });
    decipher.setAAD(aad);
    decipher.setAuthTag(segment.subarray(segment.length - TAG_LENGTH));
    const bodyLength = segment.length - TAG_LENGTH;
    // Held back until the tag verifies: unauthenticated plaintext never leaves this method.
    const pieces: Buffer[] = [];
    for (let offset = 0; offset < bodyLength; offset += CIPHER_PIECE_LENGTH) {
      pieces.push(
        decipher.update(segment.subarray(offset, Math.min(offset + CIPHER_PIECE_LENGTH, bodyLength))),
      );
    }
    try {
      decipher.final();
    } catch {
      for (const piece of pieces) piece.fill(0);
      throw new IntegrityError('segment-tag', `Segment ${index} failed authentication`, index);
    }
    this.index = index + 1;

    for (let piece of pieces) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, piece.length);
        piece = piece.subarray(n);
        this.skip -= n;
      }
      if (piece.length > this.take) piece = piece.subarray(0, this.take);
      this.take -= piece.length;
      if (piece.length > 0) {
        this.emitted += piece.length;
        this.emit(piece);
      }
    }
  }
}

const STREAM_OPTIONS = {
  writableHighWaterMark: DEFAULT_SEGMENT_SIZE,
  readableHighWaterMark: DEFAULT_SEGMENT_SIZE,
};

/** A Transform from the ciphertext of segments `firstSegment..lastSegment` to verified plaintext. */
export class DecryptStream extends Transform {
  private readonly decryptor: SegmentDecryptor;
  /** The authenticated header. */
  readonly header: ObjectHeader;

  constructor(
    opened: OpenedHeader,
    plan: SegmentPlan,
    private readonly releaseInput = false,
  ) {
    super(STREAM_OPTIONS);
    this.header = opened.header;
    this.decryptor = new SegmentDecryptor(opened, plan, (plaintext) => this.push(plaintext));
  }

  /** Verified plaintext bytes emitted so far. */
  get plaintextBytes(): number {
    return this.decryptor.emitted;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.decryptor.write(chunk);
      if (this.releaseInput) releaseBuffer(chunk);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.decryptor.end();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}

/**
 * Creates a Transform that decrypts the ciphertext of segments `firstSegment..lastSegment`, exactly
 * as a ranged read of `planRange(...).ciphertextStart..ciphertextEnd` returns it, emitting `take`
 * plaintext bytes after `skip`. The header is verified here: a wrong key, an edited header, a wrong
 * file id or an impossible `ciphertextLength` throws IntegrityError synchronously, before any
 * segment is read. Later failures (bad tag, early end = 'truncated', extra bytes = 'trailing-data')
 * error the stream; the failing segment's plaintext is never emitted.
 */
export function createDecryptStream(options: DecryptOptions): DecryptStream {
  const opened = openHeader(options.headerBytes, options.dataKey, { fileId: options.fileId });
  const geometry = describeObject(options.ciphertextLength, opened.header);
  const firstSegment = options.firstSegment ?? 0;
  const lastSegment = options.lastSegment ?? geometry.lastSegment;
  if (
    !Number.isSafeInteger(firstSegment) ||
    !Number.isSafeInteger(lastSegment) ||
    firstSegment < 0 ||
    firstSegment > lastSegment ||
    lastSegment > geometry.lastSegment
  ) {
    throw new RangeError(
      `Segments ${firstSegment}..${lastSegment} are not within 0..${geometry.lastSegment} of this object`,
    );
  }
  const skip = options.skip ?? 0;
  const take = options.take ?? Number.POSITIVE_INFINITY;
  const firstPlaintext =
    firstSegment === geometry.lastSegment
      ? geometry.lastSegmentLength - TAG_LENGTH
      : plaintextSegmentSize(opened.header.segmentSize);
  if (!Number.isSafeInteger(skip) || skip < 0 || (skip > 0 && skip >= firstPlaintext)) {
    throw new RangeError(
      `skip ${skip} is outside segment ${firstSegment} (${firstPlaintext} plaintext bytes)`,
    );
  }
  if (!(take >= 0)) {
    throw new RangeError(`take must be non-negative, got ${take}`);
  }
  return new DecryptStream(
    opened,
    {
      firstSegment,
      lastSegment,
      objectLastSegment: geometry.lastSegment,
      objectLastSegmentLength: geometry.lastSegmentLength,
      skip,
      take,
    },
    options.releaseInput,
  );
}

/**
 * A Transform that consumes a whole object (header first) and emits its verified plaintext. The
 * end of the input marks the last segment (one segment of lookahead), so the object length need
 * not be known in advance. Every failure errors the stream with an IntegrityError.
 */
export class ObjectDecryptStream extends Transform {
  private decryptor: SegmentDecryptor | null = null;
  private headerChunks: Buffer[] = [];
  private headerBytesSeen = 0;
  private parsed: ObjectHeader | null = null;

  constructor(private readonly options: ObjectDecryptOptions) {
    super(STREAM_OPTIONS);
  }

  /** The header, once it has been read (authenticated once plaintext flows). */
  get header(): ObjectHeader | null {
    return this.parsed;
  }

  /** Verified plaintext bytes emitted so far. */
  get plaintextBytes(): number {
    return this.decryptor?.emitted ?? 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.decryptor !== null) {
      try {
        this.decryptor.write(chunk);
        callback();
      } catch (error) {
        callback(error as Error);
      }
      return;
    }
    let headerBytes: Buffer;
    let rest: Buffer;
    try {
      this.headerChunks.push(chunk);
      this.headerBytesSeen += chunk.length;
      if (this.headerBytesSeen < HEADER_PREFIX_LENGTH) {
        callback();
        return;
      }
      const all = this.headerChunks.length === 1 ? chunk : Buffer.concat(this.headerChunks);
      const headerLength = headerLengthFromPrefix(all);
      if (all.length < headerLength) {
        this.headerChunks = [all];
        callback();
        return;
      }
      this.headerChunks = [];
      headerBytes = Buffer.from(all.subarray(0, headerLength));
      rest = all.subarray(headerLength);
      this.parsed = parseHeader(headerBytes).header;
    } catch (error) {
      callback(error as Error);
      return;
    }
    const verifyOptions: VerifyHeaderOptions = { fileId: this.options.fileId };
    Promise.resolve(this.parsed)
      .then((header) => this.options.getDataKey(header))
      .then((dataKey) => {
        const opened = openHeader(headerBytes, dataKey, verifyOptions);
        this.decryptor = new SegmentDecryptor(
          opened,
          {
            firstSegment: 0,
            lastSegment: null,
            objectLastSegment: null,
            objectLastSegmentLength: 0,
            skip: 0,
            take: Number.POSITIVE_INFINITY,
          },
          (plaintext) => this.push(plaintext),
        );
        this.decryptor.write(rest);
      })
      .then(
        () => callback(),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.decryptor === null) {
        throw new IntegrityError('truncated', 'Object ended inside its header');
      }
      this.decryptor.end();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}

/** Creates an {@link ObjectDecryptStream}: whole object in (header first), verified plaintext out. */
export function createObjectDecryptStream(options: ObjectDecryptOptions): ObjectDecryptStream {
  return new ObjectDecryptStream(options);
}
