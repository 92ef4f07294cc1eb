import { randomBytes, randomUUID } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StagingFollower, StagingFollowStopped } from './staging.follower.js';
import { StagingWriter } from './staging.writer.js';
import { StagingIntegrityError } from './staging-integrity.error.js';

const RECORD_SIZE = 64;
const HEADER = 65;
const FRAME = 5 + RECORD_SIZE + 16;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tess-follow-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A complete staging file's bytes (header, records, seal when `seal`), written by the real writer. */
async function staged(plaintext: Buffer, key: Buffer, fileId: string, seal = true): Promise<Buffer> {
  const path = join(dir, randomUUID());
  await pipeline(
    Readable.from([plaintext]),
    StagingWriter.create({ path, fileId, dataKey: key, recordSize: RECORD_SIZE, sealOnEnd: seal }),
  );
  return readFile(path);
}

function follow(path: string, key: Buffer, fileId: string, idleMs = 2_000): Promise<StagingFollower> {
  return StagingFollower.open(path, { dataKey: key, fileId, idleMs, pollMs: 2, maxPollMs: 20 });
}

/** Everything the follower releases until the seal. */
async function readToSeal(follower: StagingFollower): Promise<Buffer> {
  const out: Buffer[] = [];
  const into = Buffer.alloc(RECORD_SIZE);
  for (let p = await follower.readInto(into); p; p = await follower.readInto(into)) out.push(Buffer.from(p));
  return Buffer.concat(out);
}

/** Appends `bytes` to `path` in slices of `slice` bytes, `pauseMs` apart: a client sending slowly. */
async function trickle(path: string, bytes: Buffer, slice: number, pauseMs: number): Promise<void> {
  for (let at = 0; at < bytes.length; at += slice) {
    await appendFile(path, bytes.subarray(at, at + slice));
    await sleep(pauseMs);
  }
}

describe('StagingFollower: reading a staging file while it is written', () => {
  it('releases the records as they arrive, then stops at the authenticated seal', async () => {
    const key = randomBytes(32);
    const fileId = randomUUID();
    const plaintext = randomBytes(10 * RECORD_SIZE + 17);
    const bytes = await staged(plaintext, key, fileId);
    const path = join(dir, randomUUID());
    await writeFile(path, bytes.subarray(0, HEADER));
    const follower = await follow(path, key, fileId);
    // Slices that cut heads, bodies and tags apart: a record is released only once all of it is there.
    const writing = trickle(path, bytes.subarray(HEADER), 37, 1);
    expect((await readToSeal(follower)).equals(plaintext)).toBe(true);
    await writing;
    expect(follower.length).toBe(plaintext.length);
    await follower.confirm();
    await follower.close();
  });

  it('gives up after idleMs without growth, and when the file is removed', async () => {
    const key = randomBytes(32);
    const fileId = randomUUID();
    const bytes = await staged(randomBytes(4 * RECORD_SIZE), key, fileId);
    const idlePath = join(dir, randomUUID());
    await writeFile(idlePath, bytes.subarray(0, HEADER + 2 * FRAME + 10));
    const idle = await follow(idlePath, key, fileId, 100);
    const stopped = await readToSeal(idle).catch((error: unknown) => error);
    expect(stopped).toBeInstanceOf(StagingFollowStopped);
    expect((stopped as StagingFollowStopped).reason).toBe('idle');
    await idle.close();

    const gonePath = join(dir, randomUUID());
    await writeFile(gonePath, bytes.subarray(0, HEADER + FRAME));
    const gone = await follow(gonePath, key, fileId, 10_000);
    const started = Date.now();
    const reading = readToSeal(gone).catch((error: unknown) => error);
    await sleep(30);
    await unlink(gonePath);
    const removed = await reading;
    expect((removed as StagingFollowStopped).reason).toBe('removed');
    // Promptly, not after idleMs.
    expect(Date.now() - started).toBeLessThan(2_000);
    await gone.close();
  });

  it('refuses a record that does not authenticate with the reader codes, before releasing it', async () => {
    const key = randomBytes(32);
    const fileId = randomUUID();
    const bytes = Buffer.from(await staged(randomBytes(4 * RECORD_SIZE), key, fileId));
    bytes[HEADER + 2 * FRAME + 5 + 3]! ^= 1;
    const path = join(dir, randomUUID());
    await writeFile(path, bytes);
    const follower = await follow(path, key, fileId);
    const into = Buffer.alloc(RECORD_SIZE);
    expect(await follower.readInto(into)).not.toBeNull();
    expect(await follower.readInto(into)).not.toBeNull();
    const error = await follower.readInto(into).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StagingIntegrityError);
    expect((error as StagingIntegrityError).reason).toBe('record-tag');
    expect(into.every((b) => b === 0)).toBe(true);
    await follower.close();
  });

  it('refuses another key (header MAC) and bytes after the seal', async () => {
    const key = randomBytes(32);
    const fileId = randomUUID();
    const bytes = await staged(randomBytes(2 * RECORD_SIZE), key, fileId);
    const path = join(dir, randomUUID());
    await writeFile(path, bytes);
    await expect(follow(path, randomBytes(32), fileId)).rejects.toMatchObject({ reason: 'header-mac' });
    await writeFile(path, Buffer.concat([bytes, Buffer.alloc(3)]));
    const follower = await follow(path, key, fileId);
    await expect(readToSeal(follower)).rejects.toMatchObject({ reason: 'trailing-data' });
    await follower.close();
  });

  it('confirm() finds records rewritten after they were read (a resumable upload rewriting its tail)', async () => {
    const key = randomBytes(32);
    const fileId = randomUUID();
    const path = join(dir, randomUUID());
    const first = randomBytes(3 * RECORD_SIZE);
    await writeFile(path, await staged(first, key, fileId, false));
    const follower = await follow(path, key, fileId);
    const into = Buffer.alloc(RECORD_SIZE);
    for (let i = 0; i < 3; i++) expect(await follower.readInto(into)).not.toBeNull();
    // The tail goes (a chunk whose checksum failed) and other bytes of the same length take its place.
    await truncate(path, HEADER + FRAME);
    const resumed = StagingWriter.resume({ path, fileId, dataKey: key });
    await pipeline(Readable.from([randomBytes(2 * RECORD_SIZE)]), resumed);
    expect(await follower.readInto(into)).toBeNull();
    await expect(follower.confirm()).rejects.toMatchObject({ reason: 'changed' });
    await follower.close();
  });
});
