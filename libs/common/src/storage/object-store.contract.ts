import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../../../test/support/bytes.js';
import { ObjectNotFoundError, type ObjectStore } from './object-store.js';
import { MiB } from './object-store.util.js';

/** Test-only helpers and the behaviour every ObjectStore must show (run by each store's spec). */

export const PART = 5 * MiB;
/** Deliberately odd chunk sizes, so parts never line up with chunks. */
const ODD_CHUNKS = [1, 7, 4093, 65_537, 1_048_573, 3, 333_333];

export { sha256 };

/** Streams `data` in chunks of odd sizes (a byte stream, not object mode). */
export function chunkedBody(data: Buffer, sizes: number[] = ODD_CHUNKS): Readable {
  function* chunks(): Generator<Buffer> {
    let offset = 0;
    for (let index = 0; offset < data.length; index++) {
      const size = sizes[index % sizes.length]!;
      yield data.subarray(offset, offset + size);
      offset += size;
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** Delivers `data`, then neither ends nor errors (a client that stopped sending). */
export function stallingBody(data: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (sent) return;
      sent = true;
      for (let offset = 0; offset < data.length; offset += MiB)
        this.push(data.subarray(offset, offset + MiB));
    },
  });
}

/** Delivers `data`, then fails like a broken temp file read. */
export function failingBody(data: Buffer, message: string): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (sent) {
        this.destroy(new Error(message));
        return;
      }
      sent = true;
      this.push(data);
    },
  });
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export function newKey(): string {
  return `objects/${randomUUID()}`;
}

export function describeObjectStoreContract(name: string, store: () => ObjectStore): void {
  describe(`${name}: ObjectStore contract`, () => {
    const sizes: Array<[string, number]> = [
      ['0 bytes', 0],
      ['1 byte', 1],
      ['exactly one part', PART],
      ['one part + 1 byte', PART + 1],
      ['3 parts + 3 bytes', 3 * PART + 3],
    ];
    it.each(sizes)('round-trips %s byte for byte from a stream of odd chunk sizes', async (_label, size) => {
      const data = randomBytes(size);
      const key = newKey();
      const progress: number[] = [];
      const stat = await store().put(key, chunkedBody(data), { onProgress: (bytes) => progress.push(bytes) });
      expect(stat).toEqual({ size });
      expect(await store().stat(key)).toEqual({ size });
      const back = await readAll(await store().getRange(key, 0));
      expect(back.length).toBe(size);
      expect(sha256(back)).toBe(sha256(data));
      expect(progress.at(-1)).toBe(size);
      expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    });

    it('with releaseChunks, frees each whole chunk once it is stored, and stores the same bytes', async () => {
      // Chunks of odd sizes, each its own ArrayBuffer (as cipher output is), across part boundaries.
      const data = randomBytes(2 * PART + 7);
      const chunks: Buffer[] = [];
      for (let offset = 0, i = 0; offset < data.length; i++) {
        const size = ODD_CHUNKS[i % ODD_CHUNKS.length]!;
        const chunk = Buffer.alloc(Math.min(size, data.length - offset));
        data.copy(chunk, 0, offset);
        chunks.push(chunk);
        offset += size;
      }
      const kept = chunks.map((chunk) => Buffer.from(chunk));
      const key = newKey();
      await store().put(key, Readable.from(kept, { objectMode: true }));
      // Without the option the producer's chunks are left alone.
      expect(kept.every((chunk, i) => chunk.equals(chunks[i]!))).toBe(true);
      const released = newKey();
      const stat = await store().put(released, Readable.from(chunks, { objectMode: true }), {
        releaseChunks: true,
      });
      expect(stat).toEqual({ size: data.length });
      expect(sha256(await readAll(await store().getRange(released, 0)))).toBe(sha256(data));
      // Every chunk is freed, also those split between two parts.
      expect(chunks.filter((chunk) => chunk.byteLength > 0)).toEqual([]);
    });

    it('serves ranges with an inclusive end, across part boundaries, clamped at the last byte', async () => {
      const data = randomBytes(3 * PART + 3);
      const key = newKey();
      await store().put(key, chunkedBody(data));
      const cases: Array<[number, number | undefined]> = [
        [0, 0],
        [1, 10],
        [PART - 1, PART],
        [PART - 5, 2 * PART + 5],
        [data.length - 3, undefined],
        [data.length - 1, data.length - 1],
        [data.length - 2, data.length + 100],
      ];
      for (const [start, end] of cases) {
        const expected = data.subarray(start, end === undefined ? undefined : end + 1);
        const got = await readAll(await store().getRange(key, start, end));
        expect({ start, end, bytes: got.length, equal: got.equals(expected) }).toEqual({
          start,
          end,
          bytes: expected.length,
          equal: true,
        });
      }
    });

    it('reads an empty range at the very end, and rejects a start beyond it', async () => {
      const key = newKey();
      await store().put(key, chunkedBody(Buffer.from('hello')));
      expect((await readAll(await store().getRange(key, 5))).length).toBe(0);
      await expect(store().getRange(key, 6)).rejects.toBeInstanceOf(RangeError);
      await expect(store().getRange(key, 3, 2)).rejects.toBeInstanceOf(RangeError);
      await expect(store().getRange(key, -1)).rejects.toBeInstanceOf(RangeError);
    });

    it('reads a 0-byte object as an empty stream', async () => {
      const key = newKey();
      await store().put(key, chunkedBody(Buffer.alloc(0)));
      expect((await readAll(await store().getRange(key, 0))).length).toBe(0);
    });

    it('reports missing objects: getRange rejects with ObjectNotFoundError, stat is null', async () => {
      const key = newKey();
      await expect(store().getRange(key, 0)).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store().getRange(key, 10, 20)).rejects.toBeInstanceOf(ObjectNotFoundError);
      expect(await store().stat(key)).toBeNull();
    });

    it('deletes idempotently', async () => {
      const key = newKey();
      await store().put(key, chunkedBody(randomBytes(100)));
      await store().delete(key);
      await store().delete(key);
      expect(await store().stat(key)).toBeNull();
      await expect(store().getRange(key, 0)).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    it('replaces an existing object as a whole', async () => {
      const key = newKey();
      await store().put(key, chunkedBody(randomBytes(PART + 10)));
      const second = randomBytes(1000);
      await store().put(key, chunkedBody(second));
      expect(sha256(await readAll(await store().getRange(key, 0)))).toBe(sha256(second));
    });

    it('rejects with the abort reason and stores nothing when the signal is already aborted', async () => {
      const key = newKey();
      const controller = new AbortController();
      const reason = new Error('job cancelled');
      controller.abort(reason);
      const body = chunkedBody(randomBytes(100));
      await expect(store().put(key, body, { signal: controller.signal })).rejects.toBe(reason);
      expect(body.destroyed).toBe(true);
      expect(await store().stat(key)).toBeNull();
      expect(await store().abortIncomplete(key)).toBe(0);
    });

    it('aborted mid-upload: rejects with the abort reason and leaves nothing behind', async () => {
      const key = newKey();
      const controller = new AbortController();
      const reason = new Error('worker shutting down');
      const body = stallingBody(randomBytes(2 * PART + 123));
      const put = store().put(key, body, {
        signal: controller.signal,
        onProgress: (bytes) => {
          if (bytes > 0) controller.abort(reason);
        },
      });
      await expect(put).rejects.toBe(reason);
      expect(body.destroyed).toBe(true);
      expect(await store().stat(key)).toBeNull();
      expect(await store().abortIncomplete(key)).toBe(0);
    });

    it('fails with the body error when reading the body fails, and stores nothing', async () => {
      const key = newKey();
      const put = store().put(key, failingBody(randomBytes(PART + 7), 'temp file unreadable'));
      await expect(put).rejects.toThrow(/temp file unreadable/);
      expect(await store().stat(key)).toBeNull();
      expect(await store().abortIncomplete(key)).toBe(0);
    });

    it('passes its readiness check', async () => {
      await expect(store().check()).resolves.toBeUndefined();
    });
  });
}
