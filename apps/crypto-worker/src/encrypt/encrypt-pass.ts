import { Readable } from 'node:stream';
import { type EncryptOptions, SegmentEncryptor } from '#common';
import type { PlaintextSource } from './plaintext-source.js';
import type { FactsOf, PlaintextTap } from './taps/plaintext-tap.js';

const MiB = 1024 * 1024;

export interface EncryptPassOptions<T extends readonly PlaintextTap<object>[]> {
  /** Opens the plaintext: a staged upload (StagedPlaintext) or a plain file; closed by the pass. */
  source: () => Promise<PlaintextSource>;
  /** Key, file id and header fields for the object. */
  encrypt: EncryptOptions;
  /** See the very chunks that are encrypted (digests, checks); their facts make the pass's result. */
  taps: T;
  /** Bytes per read; 1 MiB (per-chunk overhead in Node streams makes smaller reads slower). */
  chunkSize?: number;
  /** Read buffers in flight between the reader, the taps and the cipher; bounds the pass's memory. */
  buffers?: number;
  /** Called after each chunk is handed to the taps and encrypted, with its length. */
  onPlaintext?: (bytes: number) => void;
  /**
   * Judges the whole file's facts before the object's last bytes are released: throwing (a
   * PlaintextRejectedError) fails the body, so the store never completes the object.
   */
  check?: (facts: FactsOf<T>) => void;
}

/** What a pass learnt: the facts of all its taps, and how many plaintext bytes it read. */
export type PassResult<F> = F & { plaintextBytes: number };

export interface EncryptPass<F> {
  /** The object bytes (header, then segments), one Buffer per read() in object mode. */
  body: Readable;
  encryptor: Pick<SegmentEncryptor, 'header' | 'segmentSize'>;
  /**
   * Settles once `body` has ended (with the taps' facts) or failed: with the source's own error when reading
   * failed (a StagingIntegrityError for staged bytes that do not authenticate).
   */
  result: Promise<PassResult<F>>;
}

/** Read buffers that live in SharedArrayBuffers, so taps on other threads can read them without a copy. */
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
 * One pass over an upload's plaintext (decrypted from its staging records): each chunk is read once into a shared buffer, handed to every tap
 * (SHA-1 and SHA-256 on other threads when the tap is a HashPool session) and encrypted on this thread
 * meanwhile; the buffer is reused once all of them are done with it. The next read is issued before the
 * current chunk is encrypted, so disk, taps and encryption overlap. Memory is `buffers` x `chunkSize`
 * plus the pieces the consumer has not taken yet, whatever the file size.
 */
export function encryptPass<const T extends readonly PlaintextTap<object>[]>(
  options: EncryptPassOptions<T>,
): EncryptPass<FactsOf<T>> {
  const { taps, onPlaintext } = options;
  const chunkSize = options.chunkSize ?? MiB;
  let pieces: Buffer[] = [];
  // The body's chunks are the store's to free once written (PutObjectOptions.releaseChunks), so the header,
  // which the encryptor keeps, goes out as a copy; every other piece is fresh cipher output or a fresh tag.
  const encryptor = new SegmentEncryptor(options.encrypt, (piece) =>
    pieces.push(piece === encryptor.header ? Buffer.from(piece) : piece),
  );
  const ring = new BufferRing(chunkSize, Math.max(2, options.buffers ?? 8));
  let settle!: { resolve: (value: PassResult<FactsOf<T>>) => void; reject: (e: Error) => void };
  const result = new Promise<PassResult<FactsOf<T>>>((resolve, reject) => {
    settle = { resolve, reject };
  });
  result.catch(() => undefined);

  const take = (): Buffer[] => {
    const out = pieces;
    pieces = [];
    return out;
  };

  async function* produce(): AsyncGenerator<Buffer> {
    let source: PlaintextSource | undefined;
    let done = false;
    // The first error of the source or a tap is what the result rejects with (not the consumer's own
    // cancellation, which also ends up in here).
    let failure: unknown;
    const noted = <R>(promise: Promise<R>): Promise<R> =>
      promise.catch((error: unknown) => {
        failure ??= error;
        throw error;
      });
    let next: Promise<{ buffer: Buffer; bytes: number }> | undefined;
    try {
      source = await noted(options.source());
      const from = source;
      const read = (): Promise<{ buffer: Buffer; bytes: number }> => {
        const ahead = (async () => {
          const buffer = await ring.acquire();
          return { buffer, bytes: await noted(from.read(buffer)) };
        })();
        // The read ahead may fail while this generator waits at a yield for the consumer: that is not an
        // unhandled rejection (Node would end the process) but the pass's failure, thrown when it is awaited.
        ahead.catch(() => undefined);
        return ahead;
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
        // The buffer goes back to the ring once every tap and the cipher are done with it.
        let holders = taps.length + 1;
        const release = () => {
          holders -= 1;
          if (holders === 0) ring.release(buffer);
        };
        for (const tap of taps) tap.update(chunk, release);
        encryptor.update(chunk);
        release();
        onPlaintext?.(bytes);
        yield* take();
      }
      const facts: object[] = await noted(Promise.all(taps.map((tap) => tap.finish())));
      // Each tap contributes its own fields, so the merge is FactsOf<T> by construction.
      const merged = Object.assign({}, ...facts) as FactsOf<T>;
      if (options.check) await noted(Promise.resolve(merged).then(options.check));
      encryptor.final();
      yield* take();
      done = true;
      settle.resolve(
        Object.assign({}, merged, { plaintextBytes: encryptor.plaintextBytes }) as PassResult<FactsOf<T>>,
      );
    } finally {
      if (!done) {
        for (const tap of taps) tap.abort();
        settle.reject(failure instanceof Error ? failure : new Error('The encryption pass did not finish'));
      }
      encryptor.wipe();
      pieces = [];
      // A read issued ahead must finish before its source is closed.
      await next?.catch(() => undefined);
      await source?.close();
    }
  }

  const body = Readable.from(produce(), { objectMode: true, highWaterMark: 16 });
  return { body, encryptor, result };
}
