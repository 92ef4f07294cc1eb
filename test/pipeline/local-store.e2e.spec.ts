import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bullPrefix, ciphertextLength, objectKeyFor, QUEUE_NAMES } from '#common';
import { MiB, SHA1_OF_NOTHING, SHA256_OF_NOTHING, sha1, sha256 } from '../support/bytes.js';
import { auditCount, tempFiles, upload, waitFor, waitForStored } from '../support/client.js';
import { decryptStored } from '../support/objects.js';
import { killAllProcesses, type TestProcess } from '../support/processes.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Upload through the real gateway -> the crypto worker as a separate process -> the local object store,
 * then the object is decrypted with the library and compared with what was sent.
 */

let world: World;
let worker: TestProcess;
let events: QueueEvents;
let alice: TestUser;

beforeAll(async () => {
  world = await createWorld();
  worker = await world.startWorker();
  const connection = { url: world.config.redis.url };
  const prefix = bullPrefix(world.config.redis.prefix);
  events = new QueueEvents(QUEUE_NAMES.crypto, { connection, prefix });
  await events.waitUntilReady();
  alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
});

afterAll(async () => {
  await worker?.stop();
  await killAllProcesses();
  await events?.close();
  await world?.close();
});

const objectPath = (id: string) => join(world.config.dataDir, objectKeyFor(id));

describe('pipeline with the local object store', { timeout: 60_000 }, () => {
  const sizes: Array<[string, number]> = [
    ['0 bytes', 0],
    ['1 byte', 1],
    ['one full segment (1 MiB - 16)', MiB - 16],
    ['one segment + 1 byte (1 MiB - 15)', MiB - 15],
    ['5 MiB + 3 bytes', 5 * MiB + 3],
  ];
  const sent = new Map<string, Buffer>();

  it('stores uploads of 0 B, 1 B, one segment, one segment + 1 and 5 MiB + 3 with the right hashes, and decrypting each object reproduces the upload', async () => {
    const bodies = sizes.map(([, size]) => randomBytes(size));
    const files = await upload(
      world,
      alice,
      bodies.map((body, i) => ({ filename: `file-${i}.bin`, body })),
    );
    expect(files.map((f) => f.size)).toEqual(sizes.map(([, size]) => size));

    for (const [i, file] of files.entries()) {
      const body = bodies[i]!;
      sent.set(file.id, body);
      const row = await waitForStored(world, file.id, { workers: [worker] });
      const label = sizes[i]![0];
      expect({ label, sha1: row.sha1, sha256: row.sha256, size: row.size }).toEqual({
        label,
        sha1: sha1(body),
        sha256: sha256(body),
        size: body.length,
      });
      expect(row).toMatchObject({
        storageDriver: 'local',
        objectKey: objectKeyFor(file.id),
        tempPath: null,
        error: null,
      });
      expect(row.keyRef).toMatch(/^local:/);
      expect(row.storedAt).toBeInstanceOf(Date);

      const decrypted = await decryptStored(world.config, file.id);
      expect({ label, sha256: decrypted.sha256, bytes: decrypted.bytes }).toEqual({
        label,
        sha256: sha256(body),
        bytes: body.length,
      });
      // The size the row promises is the size the format defines, and the size on disk.
      const expectedSize = ciphertextLength(body.length, {
        headerLength: decrypted.header.headerLength,
        segmentSize: decrypted.header.segmentSize,
      });
      expect({ label, row: row.encryptedSize, object: decrypted.encryptedSize }).toEqual({
        label,
        row: expectedSize,
        object: expectedSize,
      });
      expect((await stat(objectPath(file.id))).mode & 0o777).toBe(0o600);
      expect(decrypted.header.wrappedKey.equals(row.wrappedKey!)).toBe(true);
      expect(await auditCount(world, file.id, 'file.stored')).toBe(1);
    }

    const empty = files[0]!;
    expect(await world.files.findById(empty.id)).toMatchObject({
      sha256: SHA256_OF_NOTHING,
      sha1: SHA1_OF_NOTHING,
    });
    // The object is encrypted: the plaintext of the largest file does not appear in it.
    const largest = bodies.at(-1)!;
    const object = await readFile(objectPath(files.at(-1)!.id));
    expect(object.includes(largest.subarray(1000, 1064))).toBe(false);
    expect(await tempFiles(world.config)).toEqual([]);
  });

  it('treats a duplicate delivery of a stored file as a no-op: same row, same object, no second audit event', async () => {
    const body = randomBytes(2 * MiB + 7);
    const [file] = await upload(world, alice, [{ filename: 'dup.bin', body }]);
    const stored = await waitForStored(world, file!.id, { workers: [worker] });
    const before = await stat(objectPath(file!.id));
    const objectBefore = sha256(await readFile(objectPath(file!.id)));
    const ownerId = stored.ownerId;

    // 1. The same job name and payload under another job id (a producer that enqueued twice).
    const duplicate = await world.queue.add(
      'encrypt-file',
      { fileId: file!.id, ownerId },
      { jobId: `dup-${file!.id}` },
    );
    const result = await duplicate.waitUntilFinished(events, 30_000);
    expect(result).toMatchObject({ fileId: file!.id, sha256: sha256(body), skipped: true });

    // 2. The original job delivered again (BullMQ retry of the completed job).
    const original = (await world.queue.getJob(file!.id))!;
    expect(await original.getState()).toBe('completed');
    await original.retry('completed');
    const again = await waitFor(
      'the re-delivered original job to complete again',
      async () => {
        const job = await world.queue.getJob(file!.id);
        return job && (await job.getState()) === 'completed' && job.returnvalue?.skipped ? job : undefined;
      },
      { workers: [worker] },
    );
    expect(again.returnvalue).toMatchObject({ fileId: file!.id, skipped: true });

    const after = (await world.files.findById(file!.id))!;
    expect(after.status).toBe('stored');
    expect(after.storedAt?.getTime()).toBe(stored.storedAt?.getTime());
    expect(after.updatedAt.getTime()).toBe(stored.updatedAt.getTime());
    expect(after.wrappedKey?.equals(stored.wrappedKey!)).toBe(true);
    expect(after.attempts).toBe(stored.attempts);
    const now = await stat(objectPath(file!.id));
    expect({ ino: now.ino, mtime: now.mtimeMs }).toEqual({ ino: before.ino, mtime: before.mtimeMs });
    expect(sha256(await readFile(objectPath(file!.id)))).toBe(objectBefore);
    expect(await auditCount(world, file!.id, 'file.stored')).toBe(1);
    expect((await decryptStored(world.config, file!.id)).sha256).toBe(sha256(body));
    expect(await tempFiles(world.config)).toEqual([]);
  });

  it('exits with code 0 when SIGTERM arrives the moment it starts consuming the queue', async () => {
    const fresh = await world.startWorker({ name: 'worker stopped at once' });
    fresh.signal('SIGTERM');
    expect(await fresh.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    expect(fresh.output()).toMatch(/SIGTERM received/);
  });
});
