import { createHash } from 'node:crypto';
import { pipeline, type Readable, Transform } from 'node:stream';
import type { FileEntity } from '../database/entities/file.entity.js';
import { createDecryptStream } from '../format/decrypt.stream.js';
import { IntegrityError } from '../format/integrity.error.js';
import { HEADER_PREFIX_LENGTH, headerLengthFromPrefix, parseHeader } from '../format/object-header.js';
import { type ObjectLayout, plaintextLength, planRange } from '../format/segment-layout.js';
import { type KeyProvider, KeyUnwrapError } from '../keys/key-provider.js';
import type { ObjectStore } from '../storage/object-store.js';

/** The object or its key cannot be trusted: no plaintext was (or will be) released from the bad part. */
export class CorruptObjectError extends Error {
  constructor(
    readonly fileId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CorruptObjectError';
  }
}

export interface OpenedObject {
  /** Verified plaintext of bytes `start..end`; on an integrity failure it errors (see isIntegrityFailure). */
  stream: Readable;
  start: number;
  end: number;
  /** Plaintext length of the whole file. */
  size: number;
}

type StoredFile = Pick<FileEntity, 'id' | 'size' | 'sha256' | 'objectKey' | 'keyRef' | 'wrappedKey'>;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function corrupt(fileId: string, error: unknown): CorruptObjectError {
  if (error instanceof CorruptObjectError) return error;
  const detail =
    error instanceof IntegrityError ? `${error.reason}: ${error.message}` : (error as Error).message;
  return new CorruptObjectError(fileId, `Integrity check failed (${detail})`, { cause: error });
}

/** True for failures that mean the stored bytes or key cannot be trusted (not outages). */
export function isIntegrityFailure(error: unknown): boolean {
  if (error instanceof IntegrityError || error instanceof CorruptObjectError) return true;
  return (
    error instanceof KeyUnwrapError &&
    (error.reason === 'authentication-failed' ||
      error.reason === 'malformed' ||
      error.reason === 'wrong-file')
  );
}

/**
 * Opens a stored file for reading: fetches and authenticates the header, unwraps the data key and
 * returns a stream of verified plaintext for the whole file or one byte range, fetching only the
 * ciphertext segments that range needs. Plaintext of a segment is released only after its GCM tag
 * verified; a full read also checks the SHA-256 recorded at upload before it ends. Memory stays at
 * about one segment whatever the file size.
 */
export async function openStoredFile(
  store: ObjectStore,
  keys: KeyProvider,
  file: StoredFile,
  range?: { start: number; end: number },
): Promise<OpenedObject> {
  if (!file.objectKey || !file.keyRef) throw new CorruptObjectError(file.id, 'The file has no stored object');
  try {
    const stat = await store.stat(file.objectKey);
    if (!stat) throw new CorruptObjectError(file.id, 'The encrypted object is missing from the object store');
    if (stat.size < HEADER_PREFIX_LENGTH)
      throw new IntegrityError('truncated', 'The object is shorter than a header');
    const prefix = await readAll(await store.getRange(file.objectKey, 0, HEADER_PREFIX_LENGTH - 1));
    const headerLength = headerLengthFromPrefix(prefix);
    if (headerLength > stat.size)
      throw new IntegrityError('truncated', 'The object is shorter than its header');
    const headerBytes = await readAll(await store.getRange(file.objectKey, 0, headerLength - 1));
    const { header } = parseHeader(headerBytes);
    const layout: ObjectLayout = { headerLength, segmentSize: header.segmentSize };
    const size = plaintextLength(stat.size, layout);
    if (size !== file.size) {
      throw new IntegrityError(
        'length',
        `The object holds ${size} bytes of plaintext, the file has ${file.size}`,
      );
    }
    const dataKey = await keys.unwrapDataKey(file.id, {
      keyRef: file.keyRef,
      wrappedKey: file.wrappedKey ?? Buffer.alloc(0),
    });
    const whole = !range || (range.start === 0 && range.end === size - 1);
    const plan =
      range && size > 0
        ? planRange(layout, stat.size, range.start, range.end)
        : {
            firstSegment: 0,
            lastSegment: undefined,
            ciphertextStart: headerLength,
            ciphertextEnd: stat.size - 1,
            skip: 0,
            take: size,
          };
    let decrypt: Transform;
    try {
      decrypt = createDecryptStream({
        headerBytes,
        dataKey,
        ciphertextLength: stat.size,
        fileId: file.id,
        firstSegment: plan.firstSegment,
        lastSegment: plan.lastSegment,
        skip: plan.skip,
        take: plan.take,
      });
    } finally {
      dataKey.fill(0);
    }
    const source = await store.getRange(file.objectKey, plan.ciphertextStart, plan.ciphertextEnd);
    const output =
      whole && file.sha256
        ? sha256Check(file.id, file.sha256)
        : new Transform({ transform: (c, _e, cb) => cb(null, c) });
    const stream = pipeline(source, decrypt, output, () => undefined);
    return { stream, start: range?.start ?? 0, end: range?.end ?? size - 1, size };
  } catch (error) {
    if (isIntegrityFailure(error)) throw corrupt(file.id, error);
    throw error;
  }
}

/**
 * Passes plaintext through, holding back the latest chunk, and releases it only once the SHA-256 of
 * everything matches the one recorded at upload: a mismatch never delivers a complete file.
 */
function sha256Check(fileId: string, expected: string): Transform {
  const hash = createHash('sha256');
  let held: Buffer | null = null;
  return new Transform({
    readableHighWaterMark: 1024 * 1024,
    writableHighWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      const previous = held;
      held = chunk;
      callback(null, previous ?? undefined);
    },
    flush(callback) {
      const actual = hash.digest('hex');
      if (actual !== expected) {
        callback(new CorruptObjectError(fileId, `SHA-256 mismatch: recorded ${expected}, read ${actual}`));
        return;
      }
      callback(null, held ?? undefined);
    },
  });
}
