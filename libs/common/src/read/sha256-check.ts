import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { CorruptObjectError } from './integrity-failure.js';

/**
 * The readable side of a read's last stream: one Buffer per decrypted piece, at most 16 of them (1 MiB
 * of 64 KiB pieces) buffered. In byte mode an async iterator's read() joins everything buffered into a
 * fresh 1 MiB Buffer (an mmap and its page faults), and the pieces wait for V8's external-memory
 * collections: a 512 MiB download cost the gateway 2.3-4.0 CPU seconds and ~15 full GCs per second
 * (bench/gateway-memory.mjs); passed through whole, each piece can be freed once it is sent
 * (apps/gateway/src/downloads/releasing-sink.ts), and the same download takes 0.6 CPU seconds.
 */
export const PIECES = { readableObjectMode: true, readableHighWaterMark: 16 } as const;

/**
 * Passes plaintext through, holding back the latest chunk, and releases it only once the SHA-256 of
 * everything matches the one recorded at upload: a mismatch never delivers a complete file.
 * Its readable side is in object mode (see {@link PIECES}).
 */
export function sha256Check(fileId: string, expected: string): Transform {
  const hash = createHash('sha256');
  let held: Buffer | null = null;
  return new Transform({
    ...PIECES,
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
