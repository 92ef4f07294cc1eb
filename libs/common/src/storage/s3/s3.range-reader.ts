import { Readable } from 'node:stream';
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { ObjectNotFoundError, type ObjectStat } from '../object-store.js';
import { emptyStream, MiB, resolveRange, toBuffer } from '../object-store.util.js';
import { isNotFound, isS3Error, readFailure, type S3Connection } from './s3.errors.js';
import { s3Sdk } from './s3.sdk.js';

/** Reads byte ranges with GetObject and checks that the answer is exactly the range asked for. */
export class S3RangeReader {
  constructor(
    private readonly s3: S3Connection,
    private readonly stat: (key: string) => Promise<ObjectStat | null>,
  ) {}

  /** Bytes `start..end` inclusive of `key` (arguments already validated); see `ObjectStore.getRange`. */
  async getRange(key: string, start: number, end?: number): Promise<Readable> {
    const whole = start === 0 && end === undefined;
    const { GetObjectCommand } = s3Sdk();
    let output: GetObjectCommandOutput;
    try {
      output = await this.s3.client.send(
        new GetObjectCommand({
          Bucket: this.s3.bucket,
          Key: key,
          // A 0-byte object has no byte 0, so a whole read carries no Range at all.
          ...(whole ? {} : { Range: `bytes=${start}-${end ?? ''}` }),
        }),
      );
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(key);
      if (isS3Error(error, 'InvalidRange', 416)) {
        const stat = await this.stat(key);
        if (!stat) throw new ObjectNotFoundError(key);
        if (resolveRange(key, stat.size, start, end) === null) return emptyStream();
      }
      throw readFailure(`read of ${key} (bytes ${start}-${end ?? ''})`, error);
    }
    const body = output.Body;
    if (!(body instanceof Readable)) {
      throw new Error(`S3 returned no readable body for ${key}`);
    }
    const expected = expectedLength(key, output, start, end, whole);
    if (expected === 0) {
      body.destroy();
      return emptyStream();
    }
    return exactly(body, expected, key);
  }
}

/**
 * How many bytes the response must carry. Checks that the server honoured the range: s3rver 3.7, for
 * one, answers `bytes=0-0` with the whole object, so a longer answer that starts right is trimmed.
 */
function expectedLength(
  key: string,
  output: GetObjectCommandOutput,
  start: number,
  end: number | undefined,
  whole: boolean,
): number {
  const total = output.ContentLength ?? 0;
  if (whole) return total;
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(output.ContentRange ?? '');
  if (!match) {
    if (start === 0) return Math.min(total, end === undefined ? total : end + 1);
    throw new Error(
      `S3 ignored the range of ${key} (bytes ${start}-${end ?? ''}): no Content-Range in the answer`,
    );
  }
  const first = Number(match[1]);
  const last = Number(match[2]);
  if (first !== start) {
    throw new Error(
      `S3 answered bytes ${first}-${last} of ${key} to a request for bytes ${start}-${end ?? ''}`,
    );
  }
  const size = match[3] === '*' ? undefined : Number(match[3]);
  const wantedLast = Math.min(end ?? Number.MAX_SAFE_INTEGER, size === undefined ? last : size - 1);
  if (last < wantedLast) {
    throw new Error(`S3 answered bytes ${first}-${last} of ${key}, short of the requested end ${wantedLast}`);
  }
  return wantedLast - start + 1;
}

/** Passes exactly `length` bytes of `source` through, then ends; errors when the source ends early. */
function exactly(source: Readable, length: number, key: string): Readable {
  let remaining = length;
  const output = new Readable({
    highWaterMark: MiB,
    read() {
      source.resume();
    },
    destroy(error, callback) {
      source.destroy();
      callback(error);
    },
  });
  source.on('data', (chunk: unknown) => {
    if (remaining === 0) return;
    let buffer = toBuffer(chunk);
    if (buffer.length > remaining) buffer = buffer.subarray(0, remaining);
    remaining -= buffer.length;
    const more = output.push(buffer);
    if (remaining === 0) {
      output.push(null);
      source.destroy();
    } else if (!more) {
      source.pause();
    }
  });
  source.on('end', () => {
    if (remaining > 0) output.destroy(new Error(`S3 body of ${key} ended ${remaining} bytes early`));
  });
  source.on('error', (error) => {
    if (remaining > 0) output.destroy(error);
  });
  source.on('close', () => {
    if (remaining > 0 && !source.readableEnded) {
      output.destroy(new Error(`S3 connection for ${key} closed ${remaining} bytes early`));
    }
  });
  return output;
}
