import { Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { EncryptOptions } from '../encrypt.stream.js';

/** The fixed inputs of the test vectors (also the worked example in docs/format.md). */
export const VECTOR = {
  dataKey: Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'),
  fileId: '00112233-4455-6677-8899-aabbccddeeff',
  keyRef: 'local:test-master-1',
  wrappedKey: Buffer.from('f0f1f2f3f4f5f6f7', 'hex'),
  noncePrefix: Buffer.from('a0a1a2a3a4a5a6', 'hex'),
  segmentSize: 64,
} as const satisfies EncryptOptions;

/** Ciphertext segment size used by most tests, and the plaintext bytes it holds. */
export const S = 64;
export const P = S - 16;

/** Plaintext `00 01 02 ... ff 00 01 ...` of `length` bytes. */
export function counting(length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = i & 0xff;
  return out;
}

/** Deterministic PRNG (mulberry32), so failures reproduce. */
export function prng(seed: number): (below: number) => number {
  let a = seed >>> 0;
  return (below: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * below;
  };
}

/** Splits `data` into chunks of random sizes in 1..maxChunk (and some empty ones). */
export function randomChunks(data: Buffer, seed: number, maxChunk: number): Buffer[] {
  const random = prng(seed);
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    const n = Math.floor(random(maxChunk + 1));
    chunks.push(data.subarray(offset, offset + n));
    offset += n;
  }
  return chunks;
}

export interface RunResult {
  output: Buffer;
  error: unknown;
}

/** Writes `chunks` through `transform`, collecting whatever it emits until it ends or fails. */
export async function run(transform: Transform, chunks: Buffer[]): Promise<RunResult> {
  const out: Buffer[] = [];
  let error: unknown;
  try {
    await pipeline(
      Readable.from(chunks),
      transform,
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          out.push(chunk);
          callback();
        },
      }),
    );
  } catch (caught) {
    error = caught;
  }
  return { output: Buffer.concat(out), error };
}

/** Runs a stream factory that may also throw synchronously (header checks). */
export async function runFactory(factory: () => Transform, chunks: Buffer[]): Promise<RunResult> {
  let transform: Transform;
  try {
    transform = factory();
  } catch (error) {
    return { output: Buffer.alloc(0), error };
  }
  return run(transform, chunks);
}
