import { type FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { type EncryptOptions, SegmentEncryptor } from '#common';
import type { HashSession, PlaintextDigests } from './hash-pool.js';

const MiB = 1024 * 1024;

export interface EncryptPassOptions {
  /** The plaintext file. */
  path: string;
  /** Key, file id and header fields for the object. */
  encrypt: EncryptOptions;
  /** Computes the plaintext digests from the very chunks that are encrypted. */
  hashing: HashSession;
  /** Bytes per read; 1 MiB (per-chunk overhead in Node streams makes smaller reads slower). */
  chunkSize?: number;
  /** Read buffers in flight between the reader, the hashes and the cipher; bounds the pass's memory. */
  buffers?: number;
  /** Called after each chunk is hashed-in and encrypted, with its length. */
  onPlaintext?: (bytes: number) => void;
}

export interface EncryptPass {
  /** The object bytes (header, then segments), one Buffer per read() in object mode. */
  body: Readable;
  encryptor: Pick<SegmentEncryptor, 'header' | 'segmentSize'>;
  /** Settles once `body` has ended (with the digests) or failed. */
  result: Promise<PlaintextDigests & { plaintextBytes: number }>;
}

/** Read buffers that live in SharedArrayBuffers, so hash threads can read them without a copy. */
class BufferRing {
  private readonly free: Buffer[] = [];
  private readonly waiting: Array<(buffer: Buffer) => void> = [];
  private allocated = 0;

  constructor(
    private readonly size: number,
    private readonly capacity: number,
  ) {}

  acquire(): Promise<Buffer> {
    const buffer = this.free.pop();
    if (buffer) return Promise.resolve(buffer);
    if (this.allocated < this.capacity) {
      this.allocated += 1;
      return Promise.resolve(Buffer.from(new SharedArrayBuffer(this.size)));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(buffer: Buffer): void {
    const next = this.waiting.shift();
    if (next) next(buffer);
    else this.free.push(buffer);
  }
}

/**
 * One pass over a plaintext file: each chunk is read once into a shared buffer, handed to the hash
 * session (SHA-1 and SHA-256, on other threads when the session is a HashPool's) and encrypted on this
 * thread meanwhile; the buffer is reused once both are done with it. The next read is issued before the
 * current chunk is encrypted, so disk, hashing and encryption overlap. Memory is `buffers` x
 * `chunkSize` plus the pieces the consumer has not taken yet, whatever the file size.
 */
export function encryptPass(options: EncryptPassOptions): EncryptPass {
  const { path, hashing, onPlaintext } = options;
  const chunkSize = options.chunkSize ?? MiB;
  let pieces: Buffer[] = [];
  const encryptor = new SegmentEncryptor(options.encrypt, (piece) => pieces.push(piece));
  const ring = new BufferRing(chunkSize, Math.max(2, options.buffers ?? 8));
  let settle!: {
    resolve: (value: PlaintextDigests & { plaintextBytes: number }) => void;
    reject: (e: Error) => void;
  };
  const result = new Promise<PlaintextDigests & { plaintextBytes: number }>((resolve, reject) => {
    settle = { resolve, reject };
  });
  result.catch(() => undefined);

  const take = (): Buffer[] => {
    const out = pieces;
    pieces = [];
    return out;
  };

  async function* produce(): AsyncGenerator<Buffer> {
    let handle: FileHandle | undefined;
    let done = false;
    let next: Promise<{ buffer: Buffer; bytes: number }> | undefined;
    try {
      handle = await open(path, 'r');
      const file = handle;
      const read = async (): Promise<{ buffer: Buffer; bytes: number }> => {
        const buffer = await ring.acquire();
        const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
        return { buffer, bytes: bytesRead };
      };
      next = read();
      for (;;) {
        const { buffer, bytes } = await next;
        if (bytes === 0) {
          ring.release(buffer);
          break;
        }
        next = read();
        const chunk = buffer.subarray(0, bytes);
        // The buffer goes back to the ring once the hashes and the cipher are both done with it.
        let holders = 2;
        const release = () => {
          holders -= 1;
          if (holders === 0) ring.release(buffer);
        };
        hashing.update(chunk, release);
        encryptor.update(chunk);
        release();
        onPlaintext?.(bytes);
        yield* take();
      }
      const digests = await hashing.digest();
      encryptor.final();
      yield* take();
      done = true;
      settle.resolve({ ...digests, plaintextBytes: encryptor.plaintextBytes });
    } finally {
      if (!done) {
        hashing.abort();
        settle.reject(new Error('The encryption pass did not finish'));
      }
      encryptor.wipe();
      pieces = [];
      // A read issued ahead must finish before its file handle is closed.
      await next?.catch(() => undefined);
      await handle?.close();
    }
  }

  const body = Readable.from(produce(), { objectMode: true, highWaterMark: 16 });
  return { body, encryptor, result };
}
