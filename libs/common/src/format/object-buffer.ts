/** In-memory conveniences over the streams, for tests, fixtures and small objects. */
import { Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createDecryptStream, createObjectDecryptStream } from './decrypt.stream.js';
import { createEncryptStream, type EncryptOptions } from './encrypt.stream.js';
import { parseHeader } from './object-header.js';
import { planRange } from './segment-layout.js';

async function collect(source: Buffer, transform: Transform): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(
    Readable.from([source]),
    transform,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(chunks);
}

/** Encrypts an in-memory plaintext into a complete object (header and segments). */
export function encryptObject(plaintext: Buffer, options: EncryptOptions): Promise<Buffer> {
  return collect(plaintext, createEncryptStream(options).stream);
}

/** Options for {@link decryptObject}. */
export interface DecryptObjectOptions {
  /** When set, the header must name this file id. */
  fileId?: string;
  /** Inclusive plaintext byte range; the whole plaintext when omitted. */
  range?: { start: number; end: number };
}

/**
 * Decrypts an in-memory object, or the plaintext range `options.range` of it (through the same
 * ranged path a gateway uses), and resolves with the verified plaintext; rejects with IntegrityError.
 */
export async function decryptObject(
  object: Buffer,
  dataKey: Buffer,
  options: DecryptObjectOptions = {},
): Promise<Buffer> {
  if (options.range === undefined) {
    return collect(object, createObjectDecryptStream({ getDataKey: () => dataKey, fileId: options.fileId }));
  }
  const { header, headerLength } = parseHeader(object);
  const plan = planRange(header, object.length, options.range.start, options.range.end);
  const stream = createDecryptStream({
    headerBytes: object.subarray(0, headerLength),
    dataKey,
    ciphertextLength: object.length,
    fileId: options.fileId,
    ...plan,
  });
  return collect(object.subarray(plan.ciphertextStart, plan.ciphertextEnd + 1), stream);
}
