import { createReadStream, type ReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type * as tus from 'tus-js-client';

type FileReader = NonNullable<ConstructorParameters<typeof tus.Upload>[1]['fileReader']>;

/** What `tusFileReader` sends from: a local file, by path. */
export interface TusFile {
  readonly path: string;
}

/** Bytes per read while a chunk streams: the size the CLI hashes a file with, and the gateway's record size. */
export const TUS_READ_SIZE = 1024 * 1024;

/**
 * tus-js-client's source for a local file, reading each chunk's range in `readSize` pieces. tus-js-client's
 * own file source (for an fs.ReadStream) opens a stream per chunk with Node's default 64 KiB reads; measured
 * with `npm run bench` (docs/benchmarks.md, section 8), that client spent 1.36 CPU-s to send 512 MiB against
 * 0.60 s for a 1 MiB-read multipart POST of the same file, on the cores the gateway and worker share. Written
 * here rather than taken from a package because it is tus-js-client's own interface (FileReader/FileSource)
 * with one parameter changed, not a protocol.
 */
export function tusFileReader(readSize = TUS_READ_SIZE): FileReader {
  return {
    async openFile(input: TusFile) {
      const { size } = await stat(input.path);
      const open = new Set<ReadStream>();
      return {
        size,
        slice(start: number, end: number) {
          const to = Math.min(end, size);
          const done = to >= size;
          // tus-js-client reads `size` off the value to know how many bytes a PATCH carries.
          if (to <= start)
            return Promise.resolve({ value: Object.assign(Readable.from([]), { size: 0 }), done });
          // createReadStream's `end` is inclusive.
          const stream = createReadStream(input.path, { start, end: to - 1, highWaterMark: readSize });
          open.add(stream);
          stream.once('close', () => open.delete(stream));
          return Promise.resolve({ value: Object.assign(stream, { size: to - start }), done });
        },
        close() {
          for (const stream of open) stream.destroy();
        },
      };
    },
  };
}
