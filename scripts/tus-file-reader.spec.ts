import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import * as tus from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tusFileReader } from './tus-file-reader.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Every chunk a slice's stream yields, in order. */
async function chunks(stream: Readable): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const chunk of stream) out.push(chunk as Buffer);
  return out;
}

describe('tusFileReader', () => {
  let dir: string;
  let path: string;
  const content = randomBytes(5 * MiB + 123);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tus-reader-'));
    path = join(dir, 'file.bin');
    await writeFile(path, content);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('gives each range of the file in pieces of the read size, and says which range reaches the end', async () => {
    const source = await tusFileReader(256 * KiB).openFile({ path }, 2 * MiB);
    expect(source.size).toBe(content.length);
    const ranges = [
      [0, 2 * MiB],
      [2 * MiB, 4 * MiB],
      [4 * MiB, 6 * MiB],
    ];
    const got: Buffer[] = [];
    for (const [start, end] of ranges) {
      const { value, done } = await source.slice(start, end);
      const pieces = await chunks(value);
      expect(pieces.slice(0, -1).every((p) => p.length === 256 * KiB)).toBe(true);
      const bytes = Buffer.concat(pieces);
      // tus-js-client takes the size of a PATCH from the value: the end is clipped to the file.
      expect(value.size).toBe(bytes.length);
      expect(done).toBe(end >= content.length);
      got.push(bytes);
    }
    expect(Buffer.concat(got).equals(content)).toBe(true);
    source.close();
  });

  it('gives an empty range as an empty stream', async () => {
    const source = await tusFileReader().openFile({ path }, MiB);
    const { value, done } = await source.slice(content.length, content.length + MiB);
    expect(value.size).toBe(0);
    expect(done).toBe(true);
    expect(await chunks(value)).toEqual([]);
  });

  it('closes the streams of slices not read to the end', async () => {
    const source = await tusFileReader().openFile({ path }, MiB);
    const { value } = await source.slice(0, MiB);
    source.close();
    await new Promise((resolve) => value.once('close', resolve));
    expect(value.destroyed).toBe(true);
  });

  it('sends a whole file through tus-js-client in chunks that do not divide it', async () => {
    // A minimal tus server in this process: creation, then PATCHes appended in order.
    const received: Buffer[] = [];
    let offset = 0;
    const patches: number[] = [];
    const server = http.createServer((req, res) => {
      const headers = { 'Tus-Resumable': '1.0.0' };
      if (req.method === 'POST') {
        res.writeHead(201, { ...headers, Location: '/files/1' }).end();
        return;
      }
      if (req.method !== 'PATCH' || Number(req.headers['upload-offset']) !== offset) {
        res.writeHead(409, headers).end();
        return;
      }
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        received.push(chunk);
        bytes += chunk.length;
      });
      req.on('end', () => {
        offset += bytes;
        patches.push(bytes);
        res.writeHead(204, { ...headers, 'Upload-Offset': String(offset) }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve, reject) => {
        new tus.Upload({ path } as unknown as Buffer, {
          endpoint: `http://127.0.0.1:${port}/files`,
          chunkSize: 2 * MiB,
          fileReader: tusFileReader(),
          retryDelays: null,
          storeFingerprintForResuming: false,
          onSuccess: () => resolve(),
          onError: reject,
        }).start();
      });
    } finally {
      server.close();
    }
    expect(patches).toEqual([2 * MiB, 2 * MiB, MiB + 123]);
    const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha256(Buffer.concat(received))).toBe(sha256(content));
  });
});
