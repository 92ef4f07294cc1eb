import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http, { type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { HttpException } from '@nestjs/common';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AuditRecord,
  type AuditRepository,
  createKeyProvider,
  type EnvelopeKeyProvider,
  encryptObject,
  type FileEntity,
  type FileRepository,
  LocalObjectStore,
  objectKeyFor,
} from '#common';
import { type DownloadOutcome, DownloadResponder } from './download.responder.js';
import { FileReader } from './file-reader.service.js';

/**
 * The responder's outcome, which share links will count downloads by: real objects in a local store
 * under a real envelope key; only the two repositories are in-memory (test/api covers them for real).
 */

const SEGMENT = 64 * 1024;

describe('DownloadResponder outcome', () => {
  let dir: string;
  let store: LocalObjectStore;
  let keys: EnvelopeKeyProvider;
  let server: Server;
  let base: string;
  const audits: AuditRecord[] = [];
  const corrupted: string[] = [];
  const rows = new Map<string, FileEntity>();
  const outcomes = new Map<string, DownloadOutcome | number>();

  async function storeFile(plaintext: Buffer): Promise<FileEntity> {
    const id = randomUUID();
    const { dataKey, keyRef, wrappedKey } = await keys.createDataKey(id);
    const object = await encryptObject(plaintext, {
      dataKey,
      fileId: id,
      keyRef,
      wrappedKey,
      segmentSize: SEGMENT,
    });
    await store.put(objectKeyFor(id), Readable.from([object]));
    const file = {
      id,
      ownerId: randomUUID(),
      filename: 'data.bin',
      contentType: 'application/octet-stream',
      size: plaintext.length,
      status: 'stored',
      sha256: createHash('sha256').update(plaintext).digest('hex'),
      objectKey: objectKeyFor(id),
      keyRef,
      wrappedKey,
    } as FileEntity;
    rows.set(id, file);
    return file;
  }

  /** Flips one ciphertext byte `fromEnd` bytes before the end of the object. */
  async function flip(file: FileEntity, fromEnd: number): Promise<void> {
    const path = join(dir, 'objects', file.objectKey!);
    const bytes = await readFile(path);
    bytes[bytes.length - fromEnd]! ^= 0x01;
    await writeFile(path, bytes);
  }

  function get(id: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      http.get(`${base}/${id}`, { headers }, resolve).on('error', reject);
    });
  }

  async function body(res: IncomingMessage): Promise<{ bytes: Buffer; complete: boolean }> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of res) chunks.push(chunk as Buffer);
      return { bytes: Buffer.concat(chunks), complete: res.complete };
    } catch {
      return { bytes: Buffer.concat(chunks), complete: false };
    }
  }

  async function outcomeOf(id: string): Promise<DownloadOutcome | number> {
    for (let i = 0; i < 500 && !outcomes.has(id); i++) await new Promise((r) => setTimeout(r, 10));
    return outcomes.get(id)!;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tess-responder-'));
    store = new LocalObjectStore({ root: join(dir, 'objects') });
    keys = createKeyProvider({
      provider: 'local',
      masterKeyFile: join(dir, 'master.key'),
      mode: 'envelope',
      createIfMissing: true,
    });
    const files = {
      async markCorrupt(id: string): Promise<boolean> {
        corrupted.push(id);
        return true;
      },
    } as unknown as FileRepository;
    const audit = {
      async record(event: AuditRecord): Promise<void> {
        audits.push(event);
      },
    } as unknown as AuditRepository;
    const responder = new DownloadResponder(new FileReader(files, audit, store, keys), audit);
    const app = express();
    app.get('/:id', async (req, res) => {
      const id = req.params.id;
      try {
        outcomes.set(
          id,
          await responder.send(rows.get(id)!, req, res, { action: 'file.downloaded', userId: null }),
        );
      } catch (error) {
        const status = error instanceof HttpException ? error.getStatus() : 500;
        outcomes.set(id, status);
        res.status(status).end();
      }
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('a full download that reaches the client: 200, complete, audited once with the caller event', async () => {
    const data = randomBytes(5 * SEGMENT);
    const file = await storeFile(data);
    const res = await get(file.id);
    expect(res.statusCode).toBe(200);
    const got = await body(res);
    expect(got.complete).toBe(true);
    expect(got.bytes.equals(data)).toBe(true);
    expect(await outcomeOf(file.id)).toEqual({ status: 200, body: 'complete' });
    expect(audits.filter((a) => a.fileId === file.id)).toEqual([
      // The name as it is now: the event outlives the file (the Activity page shows it).
      {
        action: 'file.downloaded',
        userId: null,
        fileId: file.id,
        ip: '127.0.0.1',
        details: { filename: file.filename },
      },
    ]);
  });

  it('a range: 206, complete, not audited', async () => {
    const data = randomBytes(3 * SEGMENT);
    const file = await storeFile(data);
    const res = await get(file.id, { Range: 'bytes=100-199' });
    expect(res.statusCode).toBe(206);
    expect((await body(res)).bytes.equals(data.subarray(100, 200))).toBe(true);
    expect(await outcomeOf(file.id)).toEqual({ status: 206, body: 'complete' });
    expect(audits.filter((a) => a.fileId === file.id)).toEqual([]);
  });

  it('a bad tag after the first chunk cuts the body: outcome corrupt and the file marked', async () => {
    // Large enough that the stream buffers (about 2 MiB) cannot read ahead to the bad last segment.
    const file = await storeFile(randomBytes(8 * 1024 * 1024));
    await flip(file, 1);
    const res = await get(file.id);
    expect(res.statusCode).toBe(200);
    expect((await body(res)).complete).toBe(false);
    expect(await outcomeOf(file.id)).toEqual({ status: 200, body: 'corrupt' });
    expect(corrupted).toContain(file.id);
  });

  it('a client that leaves midway: outcome cut, nothing marked', async () => {
    const file = await storeFile(randomBytes(32 * 1024 * 1024));
    const res = await get(file.id);
    expect(res.statusCode).toBe(200);
    // Never read: the socket buffers then hold far less than the file, so the server cannot finish.
    res.destroy();
    expect(await outcomeOf(file.id)).toEqual({ status: 200, body: 'cut' });
    expect(corrupted).not.toContain(file.id);
  });

  it('failures before the headers are thrown, not reported as an outcome', async () => {
    const file = await storeFile(randomBytes(SEGMENT));
    expect((await get(file.id, { Range: `bytes=${SEGMENT}-` })).statusCode).toBe(416);
    expect(await outcomeOf(file.id)).toBe(416);
  });
});
