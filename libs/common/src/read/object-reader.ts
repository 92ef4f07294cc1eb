import { pipeline, type Readable, Transform } from 'node:stream';
import type { FileEntity } from '../database/entities/file.entity.js';
import { createDecryptStream } from '../format/decrypt.stream.js';
import { IntegrityError } from '../format/integrity.error.js';
import { HEADER_PREFIX_LENGTH, headerLengthFromPrefix, parseHeader } from '../format/object-header.js';
import { type ObjectLayout, plaintextLength, planRange } from '../format/segment-layout.js';
import type { KeyProvider } from '../keys/key-provider.js';
import type { ObjectStore } from '../storage/object-store.js';
import { asCorruptObjectError, CorruptObjectError, isIntegrityFailure } from './integrity-failure.js';
import { PIECES, sha256Check } from './sha256-check.js';

/** An inclusive byte range of plaintext, `start..end`, both within the file. */
export interface ByteRange {
  start: number;
  end: number;
}

/** A file opened by {@link openStoredFile}: the header authenticated and the key unwrapped already. */
export interface OpenedObject {
  /** Verified plaintext of bytes `start..end`; on an integrity failure it errors (see isIntegrityFailure). */
  stream: Readable;
  /** First plaintext byte of the stream (0 for a full read). */
  start: number;
  /** Last plaintext byte of the stream, inclusive (size - 1 for a full read). */
  end: number;
  /** Plaintext length of the whole file. */
  size: number;
}

/** What the reader needs of a file's row: where its object and key are and what it must hold. */
export type StoredObjectRef = Pick<
  FileEntity,
  'id' | 'size' | 'sha256' | 'objectKey' | 'keyRef' | 'wrappedKey'
> &
  Partial<Pick<FileEntity, 'objectId'>>;

/** The id a file's object and data key are bound to: `objectId` for a later version, else the file's id. */
export function objectIdOf(file: Pick<FileEntity, 'id'> & Partial<Pick<FileEntity, 'objectId'>>): string {
  return file.objectId ?? file.id;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
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
  file: StoredObjectRef,
  range?: ByteRange,
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
    const boundId = objectIdOf(file);
    const dataKey = await keys.unwrapDataKey(boundId, {
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
        fileId: boundId,
        firstSegment: plan.firstSegment,
        lastSegment: plan.lastSegment,
        skip: plan.skip,
        take: plan.take,
        // The store's read stream hands each chunk to this stream alone.
        releaseInput: true,
      });
    } finally {
      dataKey.fill(0);
    }
    const source = await store.getRange(file.objectKey, plan.ciphertextStart, plan.ciphertextEnd);
    const output =
      whole && file.sha256
        ? sha256Check(file.id, file.sha256)
        : new Transform({ ...PIECES, transform: (c, _e, cb) => cb(null, c) });
    const stream = pipeline(source, decrypt, output, () => undefined);
    return { stream, start: range?.start ?? 0, end: range?.end ?? size - 1, size };
  } catch (error) {
    if (isIntegrityFailure(error)) throw asCorruptObjectError(file.id, error);
    throw error;
  }
}
