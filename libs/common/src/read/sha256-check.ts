import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { CorruptObjectError } from './integrity-failure.js';

/**
 * Passes plaintext through, holding back the latest chunk, and releases it only once the SHA-256 of
 * everything matches the one recorded at upload: a mismatch never delivers a complete file.
 */
export function sha256Check(fileId: string, expected: string): Transform {
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
