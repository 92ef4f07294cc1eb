import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { releaseBuffer } from '#common';

/**
 * A Writable in front of an HTTP response that frees each chunk (releaseBuffer) as soon as the socket
 * has taken it, for chunks nobody else holds: a download's decrypted pieces. Each is a fresh off-heap
 * buffer from the decipher, and left to V8 they pile up to its external-memory limit (about 64 MiB)
 * and are freed only by the full collections that limit triggers, several per second at download speed.
 *
 * It ends the response when it finishes, and errors when the response closes before that (the client
 * went away), so a pipeline into it settles as one into the response itself would.
 */
export function releasingSink(res: ServerResponse): Writable {
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    writev(chunks, callback) {
      let left = chunks.length;
      let failure: Error | null | undefined;
      const done = (chunk: Buffer) => (error?: Error | null) => {
        releaseBuffer(chunk);
        failure ??= error;
        if (--left === 0) callback(failure);
      };
      res.cork();
      for (const { chunk } of chunks) res.write(chunk, done(chunk));
      res.uncork();
    },
    final(callback) {
      res.end(() => callback());
    },
  });
  res.once('close', () => {
    if (!res.writableFinished) sink.destroy(new Error('The response closed before the body was sent'));
  });
  return sink;
}
