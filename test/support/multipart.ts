import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';

export interface PartSpec {
  field?: string;
  filename: string;
  contentType?: string;
  /** Bytes or a generator of `size` pseudo-random bytes (streamed, never held whole). */
  body: Buffer | { size: number; seed?: number };
}

/** Deterministic bytes for tests: a repeating 64 KiB random block (cheap, not compressible). */
const BLOCK = randomBytes(64 * 1024);

function* chunks(size: number): Generator<Buffer> {
  let left = size;
  while (left > 0) {
    const n = Math.min(left, BLOCK.length);
    yield BLOCK.subarray(0, n);
    left -= n;
  }
}

export function bytesOf(size: number): Buffer {
  return Buffer.concat([...chunks(size)]);
}

/** A multipart/form-data body as a stream, plus its boundary and exact length. */
export function multipart(parts: PartSpec[]): { stream: Readable; boundary: string; length: number } {
  const boundary = `----tess${randomBytes(12).toString('hex')}`;
  const pieces: (Buffer | { size: number })[] = [];
  for (const part of parts) {
    pieces.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${part.field ?? 'file'}"; ` +
          `filename="${part.filename}"\r\nContent-Type: ${part.contentType ?? 'application/octet-stream'}\r\n\r\n`,
      ),
    );
    pieces.push(part.body);
    pieces.push(Buffer.from('\r\n'));
  }
  pieces.push(Buffer.from(`--${boundary}--\r\n`));
  const length = pieces.reduce((n, p) => n + (Buffer.isBuffer(p) ? p.length : p.size), 0);
  function* all(): Generator<Buffer> {
    for (const p of pieces) {
      if (Buffer.isBuffer(p)) yield p;
      else yield* chunks(p.size);
    }
  }
  return { stream: Readable.from(all()), boundary, length };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * POSTs a multipart body with node:http: with `chunked: true` no Content-Length is sent (the server
 * must enforce limits while streaming); `abortAfter` destroys the request after that many body bytes.
 */
export function postMultipart(
  url: string,
  parts: PartSpec[],
  options: {
    headers?: Record<string, string>;
    chunked?: boolean;
    abortAfter?: number;
    /** Stops sending after `bytes` body bytes until `until` settles (something happens mid-upload). */
    pauseAfter?: { bytes: number; until: () => Promise<unknown> };
  } = {},
): Promise<RawResponse> {
  const { stream, boundary, length } = multipart(parts);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: {
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        ...(options.chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': String(length) }),
        ...options.headers,
      },
    });
    req.on('response', (res) => {
      const body: Buffer[] = [];
      res.on('data', (c: Buffer) => body.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(body).toString() }),
      );
      res.on('error', reject);
    });
    req.on('error', (error) =>
      options.abortAfter !== undefined ? resolve({ status: 0, headers: {}, body: '' }) : reject(error),
    );
    let sent = 0;
    stream.on('data', (chunk: Buffer) => {
      if (options.abortAfter !== undefined && sent + chunk.length > options.abortAfter) {
        req.write(chunk.subarray(0, options.abortAfter - sent));
        stream.destroy();
        setTimeout(() => req.destroy(), 100);
        return;
      }
      sent += chunk.length;
      const pause = options.pauseAfter;
      if (pause && sent >= pause.bytes) {
        options.pauseAfter = undefined;
        stream.pause();
        req.write(chunk);
        void pause.until().finally(() => stream.resume());
        return;
      }
      if (!req.write(chunk)) {
        stream.pause();
        req.once('drain', () => stream.resume());
      }
    });
    stream.on('end', () => req.end());
  });
}
