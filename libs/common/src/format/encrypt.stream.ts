/**
 * Streaming encryption into the v1 object format.
 *
 * Invariants: the header is emitted before any segment; every segment but the last carries exactly
 * `segmentSize - 16` plaintext bytes; a segment is sealed as "last" only once the input has ended
 * (one segment of lookahead), so at most one segment of plaintext is buffered here.
 */
import { createCipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { secretKey } from '../util/secret-key.js';
import {
  CIPHER_PIECE_LENGTH,
  DEFAULT_SEGMENT_SIZE,
  encodeHeader,
  NONCE_LENGTH,
  openHeader,
  randomNoncePrefix,
  TAG_LENGTH,
  writeSegmentNonce,
} from './object-header.js';
import { MAX_SEGMENTS, plaintextSegmentSize } from './segment-layout.js';

/** Inputs for {@link createEncryptStream}. */
export interface EncryptOptions {
  /** The file's fresh 256-bit data key. Never stored; only used to derive the header MAC and segment keys. */
  dataKey: Buffer;
  /** The file's UUID, recorded in (and authenticated by) the header. */
  fileId: string;
  /** Identifies the master key / secret that unwraps `wrappedKey` (at most 1024 UTF-8 bytes). */
  keyRef: string;
  /** The data key wrapped by the master key (may be empty, at most 65535 bytes). */
  wrappedKey: Buffer;
  /** Ciphertext bytes per segment; defaults to 1 MiB. Values below 1 MiB are for tests. */
  segmentSize?: number;
  /** Fixed nonce prefix, for test vectors only; production always uses a fresh random prefix. */
  noncePrefix?: Buffer;
}

/**
 * The synchronous core of encryption into the v1 format: feed plaintext with {@link update}, end with
 * {@link final}; every output piece (header, ciphertext pieces, tags) goes to `emit` in order before the
 * call returns. Nothing keeps a reference to an input chunk once {@link update} returns (partial
 * segments are copied), so callers may reuse their input buffers immediately.
 */
export class SegmentEncryptor {
  /** The authenticated header, emitted first. */
  readonly header: Buffer;
  readonly segmentSize: number;
  private readonly plainSegment: number;
  private readonly segmentKey: Buffer;
  private readonly aad: Buffer;
  private readonly noncePrefix: Buffer;
  private readonly nonce = Buffer.alloc(NONCE_LENGTH);
  private pending: Buffer | null = null;
  private filled = 0;
  /** How much of `pending` has ever held plaintext: what wipe() must zero (small files touch little of it). */
  private dirty = 0;
  private segmentIndex = 0;
  private headerEmitted = false;
  private plaintextIn = 0;
  private ciphertextOut = 0;

  constructor(
    options: EncryptOptions,
    private readonly emit: (piece: Buffer) => void,
  ) {
    const segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    const noncePrefix = options.noncePrefix ?? randomNoncePrefix();
    this.header = encodeHeader(
      {
        segmentSize,
        fileId: options.fileId,
        keyRef: options.keyRef,
        wrappedKey: options.wrappedKey,
        noncePrefix,
      },
      options.dataKey,
    );
    const opened = openHeader(this.header, options.dataKey);
    this.segmentSize = segmentSize;
    this.plainSegment = plaintextSegmentSize(segmentSize);
    this.segmentKey = opened.segmentKey;
    this.aad = opened.aad;
    this.noncePrefix = opened.header.noncePrefix;
  }

  /** Plaintext bytes consumed so far. */
  get plaintextBytes(): number {
    return this.plaintextIn;
  }

  /** Object bytes (header included) emitted so far. */
  get ciphertextBytes(): number {
    return this.ciphertextOut;
  }

  /** Segments sealed so far. */
  get segments(): number {
    return this.segmentIndex;
  }

  /** Encrypts what it can of `chunk`; at most one segment of plaintext stays buffered (copied). */
  update(chunk: Uint8Array): void {
    this.emitHeader();
    this.plaintextIn += chunk.length;
    const p = this.plainSegment;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.filled === p) {
        // A full buffered segment followed by more input cannot be the last one.
        this.seal(this.buffer(p), false);
        this.filled = 0;
      }
      if (this.filled === 0 && chunk.length - offset > p) {
        // Whole segment inside the chunk with more input after it: encrypt in place, no copy.
        this.seal(chunk.subarray(offset, offset + p), false);
        offset += p;
        continue;
      }
      const n = Math.min(p - this.filled, chunk.length - offset);
      this.buffer(this.filled + n).set(chunk.subarray(offset, offset + n), this.filled);
      this.filled += n;
      if (this.filled > this.dirty) this.dirty = this.filled;
      offset += n;
    }
  }

  /** Seals the buffered rest as the last segment (an empty one for empty input) and wipes the buffer. */
  final(): void {
    this.emitHeader();
    this.seal(this.pending === null ? Buffer.alloc(0) : this.pending.subarray(0, this.filled), true);
    this.wipe();
  }

  /** Zeroes and drops the buffered plaintext (after {@link final}, or when abandoning the object). */
  wipe(): void {
    this.pending?.fill(0, 0, this.dirty);
    this.pending = null;
    this.filled = 0;
    this.dirty = 0;
  }

  /**
   * The segment buffer, with room for at least `needed` bytes. It grows by doubling up to one segment, so a
   * small file never allocates a whole segment: a fresh 1 MiB per file is external memory that V8 answers
   * with full garbage collections (measured: most of a worker's CPU on a stream of 16 KiB files).
   */
  private buffer(needed: number): Buffer {
    if (this.pending && this.pending.length >= needed) return this.pending;
    const size = Math.min(this.plainSegment, Math.max(needed, 2 * (this.pending?.length ?? 0), 4096));
    const grown = Buffer.allocUnsafe(size);
    if (this.pending) {
      this.pending.copy(grown, 0, 0, this.filled);
      this.pending.fill(0, 0, this.dirty);
    }
    this.dirty = this.filled;
    this.pending = grown;
    return grown;
  }

  private emitHeader(): void {
    if (!this.headerEmitted) {
      this.headerEmitted = true;
      this.ciphertextOut += this.header.length;
      this.emit(this.header);
    }
  }

  private seal(plaintext: Uint8Array, last: boolean): void {
    if (this.segmentIndex >= MAX_SEGMENTS) {
      throw new RangeError(`Plaintext exceeds ${MAX_SEGMENTS} segments of ${this.plainSegment} bytes`);
    }
    const nonce = writeSegmentNonce(this.nonce, this.noncePrefix, this.segmentIndex, last);
    const cipher = createCipheriv('aes-256-gcm', secretKey(this.segmentKey), nonce, {
      authTagLength: TAG_LENGTH,
    });
    cipher.setAAD(this.aad);
    for (let offset = 0; offset < plaintext.length; offset += CIPHER_PIECE_LENGTH) {
      this.emit(cipher.update(plaintext.subarray(offset, offset + CIPHER_PIECE_LENGTH)));
    }
    cipher.final();
    const tag = cipher.getAuthTag();
    this.segmentIndex += 1;
    this.ciphertextOut += plaintext.length + tag.length;
    this.emit(tag);
  }
}

/** A Transform from plaintext (any chunking) to a complete encrypted object (header first). */
export class EncryptStream extends Transform {
  /** The authenticated header this stream emits first. */
  readonly header: Buffer;
  readonly segmentSize: number;
  private readonly encryptor: SegmentEncryptor;

  constructor(options: EncryptOptions) {
    const segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    super({
      writableHighWaterMark: DEFAULT_SEGMENT_SIZE,
      readableHighWaterMark: Math.max(segmentSize, 65536),
    });
    this.encryptor = new SegmentEncryptor(options, (piece) => this.push(piece));
    this.header = this.encryptor.header;
    this.segmentSize = this.encryptor.segmentSize;
  }

  /** Plaintext bytes consumed so far. */
  get plaintextBytes(): number {
    return this.encryptor.plaintextBytes;
  }

  /** Object bytes (header included) emitted so far. */
  get ciphertextBytes(): number {
    return this.encryptor.ciphertextBytes;
  }

  /** Segments sealed so far. */
  get segments(): number {
    return this.encryptor.segments;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.encryptor.update(chunk);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.encryptor.final();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.encryptor.wipe();
    callback(error);
  }
}

/**
 * Creates the encrypting Transform for one object. Pipe the plaintext in and the object bytes out
 * (header, then segments). The returned `header` is the same Buffer the stream emits first.
 */
export function createEncryptStream(options: EncryptOptions): { header: Buffer; stream: EncryptStream } {
  const stream = new EncryptStream(options);
  return { header: stream.header, stream };
}
