import { open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bullPrefix, type EncryptFileResult, QUEUE_NAMES } from '#common';
import { MiB, sha256 } from '../support/bytes.js';
import {
  auditCount,
  downloadContent,
  tempFiles,
  userId,
  waitFor,
  waitForJob,
  waitForStatus,
  waitForStored,
} from '../support/client.js';
import { bytesOf, type PartSpec, postMultipart, type RawResponse } from '../support/multipart.js';
import { listObjects, openMultipartUploads, partsOnS3rver, s3Client } from '../support/objects.js';
import { killAllProcesses, type TestProcess } from '../support/processes.js';
import { tusUpload } from '../support/tus.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Pipelined uploads (docs/security.md item 40): a follower stores an upload while it still arrives and
 * commits it moments after the last byte; anything short of a clean commit leaves nothing of the follower's
 * behind and the file to the normal encrypt-file job, which decides its fate exactly as without one.
 * Every proof here is structural (parts on s3rver, a partial object on disk, the normal job's skipped
 * result while the upload is still paused), not a timing.
 */

const SIZE = 24 * MiB;

function followQueue(world: World): Queue {
  return new Queue(QUEUE_NAMES.follow, {
    connection: { url: world.config.redis.url },
    prefix: bullPrefix(world.config.redis.prefix),
  });
}

/** What each follower returned, by job id (= file id): a commit, or `skipped` when it gave up. */
async function followerResults(
  world: World,
): Promise<{ results: Map<string, EncryptFileResult>; close(): Promise<void> }> {
  const events = new QueueEvents(QUEUE_NAMES.follow, {
    connection: { url: world.config.redis.url },
    prefix: bullPrefix(world.config.redis.prefix),
  });
  await events.waitUntilReady();
  const results = new Map<string, EncryptFileResult>();
  events.on('completed', ({ jobId, returnvalue }) => {
    results.set(
      jobId,
      (typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as EncryptFileResult,
    );
  });
  return { results, close: () => events.close() };
}

/** Waits until `count` more followers than `before` ended, and expects each of them to have given up. */
async function followersGaveUp(
  results: Map<string, EncryptFileResult>,
  before: number,
  count = 1,
): Promise<void> {
  await waitFor(`${count} more follower(s) to end`, async () => results.size >= before + count);
  const ended = [...results.values()].slice(before);
  expect(ended.map((r) => r.skipped)).toEqual(Array(count).fill(true));
}

/** The result of the follower of `id` (waits for it). */
function followerResult(results: Map<string, EncryptFileResult>, id: string): Promise<EncryptFileResult> {
  return waitFor(`the follower of ${id} to end`, async () => results.get(id));
}

/** POSTs one file of `size` bytes, pausing after `pauseAt` body bytes until `meanwhile` settles. */
function slowUpload(
  world: World,
  user: TestUser,
  size: number,
  pauseAt: number,
  meanwhile: () => Promise<unknown>,
  extra: { abortAfter?: number } = {},
): Promise<RawResponse> {
  const parts: PartSpec[] = [{ filename: 'big.bin', body: { size } }];
  return postMultipart(`${world.base}/api/v1/uploads`, parts, {
    headers: user.auth,
    pauseAfter: { bytes: pauseAt, until: meanwhile },
    ...extra,
  });
}

function acceptedId(res: RawResponse): string {
  expect(res.status, res.body).toBe(202);
  return (JSON.parse(res.body) as { files: Array<{ id: string }> }).files[0]!.id;
}

/** The normal job's result: `skipped` when it found the file stored already (by the follower). */
async function encryptJobResult(world: World, id: string): Promise<EncryptFileResult> {
  return waitFor(`the encrypt-file job of ${id} to complete`, async () => {
    const job = await world.queue.getJob(id);
    return job && (await job.getState()) === 'completed' ? (job.returnvalue as EncryptFileResult) : undefined;
  });
}

async function expectDownload(world: World, user: TestUser, id: string, size: number): Promise<void> {
  const res = await downloadContent(world, user, id);
  expect(res.status).toBe(200);
  expect(res.complete).toBe(true);
  const expected = bytesOf(size);
  expect(res.sha256).toBe(sha256(expected));
  expect(res.body.equals(expected)).toBe(true);
  const row = await world.files.findById(id);
  expect(row?.sha256).toBe(sha256(expected));
}

/** The owner's rows still in the pipeline. */
async function liveRows(world: World, user: TestUser): Promise<number> {
  const rows: Array<{ n: string }> = await world.dataSource.query(
    `SELECT count(*) AS n FROM files WHERE owner_id = $1 AND status IN ('receiving', 'queued', 'processing')`,
    [await userId(world, user)],
  );
  return Number(rows[0]!.n);
}

async function multipartUploads(world: World): Promise<string[]> {
  if (world.kind !== 's3') return [];
  const client = s3Client(world.s3!);
  try {
    return await openMultipartUploads(client, world.s3!.bucket, 'objects/');
  } finally {
    client.destroy();
  }
}

/** Parts of the follower's multipart upload (s3) or its partial object (local) exist: it is writing. */
async function followerWriting(world: World): Promise<boolean> {
  if (world.kind === 's3')
    return (await partsOnS3rver(world.s3!)) > 0 && (await multipartUploads(world)).length === 1;
  const partials = await readdir(join(world.config.dataDir, '.partial')).catch(() => [] as string[]);
  return partials.length === 1;
}

/**
 * No row in a live state, no staging file, no object besides `objects` (those of files stored before), no
 * partial object, no open multipart upload, no follower job.
 */
async function expectNothingLeft(
  world: World,
  user: TestUser,
  follow: Queue,
  objects: string[],
): Promise<void> {
  const state = async () => ({
    rows: await liveRows(world, user),
    staged: await tempFiles(world.config),
    objects: await listObjects(world),
    partials: await readdir(join(world.config.dataDir, '.partial')).catch(() => []),
    multipart: await multipartUploads(world),
    followers: await follow.getJobCounts('active', 'waiting', 'delayed', 'failed', 'completed'),
  });
  const empty = {
    rows: 0,
    staged: [],
    objects,
    partials: [],
    multipart: [],
    followers: { active: 0, waiting: 0, delayed: 0, failed: 0, completed: 0 },
  };
  // Well within PIPELINE_IDLE (20 s here): the follower saw its staging file go, it did not time out.
  await waitFor(
    'nothing left of the upload',
    async () => JSON.stringify(await state()) === JSON.stringify(empty),
    {
      timeoutMs: 8_000,
      last: state,
    },
  );
}

describe.each(['s3', 'local'] as const)('pipelined multipart uploads (%s store)', (store) => {
  let world: World;
  let alice: TestUser;
  let follow: Queue;
  let followers: Awaited<ReturnType<typeof followerResults>>;

  beforeAll(async () => {
    world = await createWorld({
      store,
      workers: 'in-process',
      env: { PIPELINE_MIN_BYTES: '8MiB', PIPELINE_IDLE: '20s', MAX_FILE_SIZE: '40MiB', JOB_ATTEMPTS: '2' },
    });
    alice = await createUser(world.server, `pipe-${store}`);
    follow = followQueue(world);
    followers = await followerResults(world);
  }, 60_000);

  afterAll(async () => {
    await followers?.close();
    await follow?.close();
    await world?.close();
  });

  it('writes the object while the upload arrives and stores it at once: the normal job finds it stored', async () => {
    let writingBeforeLastByte = false;
    const res = await slowUpload(world, alice, SIZE, 16 * MiB, async () => {
      writingBeforeLastByte = await waitFor('the follower to write parts', () => followerWriting(world));
    });
    const id = acceptedId(res);
    expect(writingBeforeLastByte).toBe(true);
    await waitForStored(world, id);
    // The follower committed; the encrypt-file job enqueued at the seal took the lock after it and did nothing.
    const committed = await followerResult(followers.results, id);
    expect(committed).toMatchObject({ fileId: id, size: SIZE, sha256: sha256(bytesOf(SIZE)) });
    expect(committed.skipped).toBeUndefined();
    expect((await encryptJobResult(world, id)).skipped).toBe(true);
    expect(await auditCount(world, id, 'file.stored')).toBe(1);
    await expectDownload(world, alice, id, SIZE);
    expect(await multipartUploads(world)).toEqual([]);
    expect(await tempFiles(world.config)).toEqual([]);
  });

  it('a client that disconnects mid-upload leaves nothing: no row, staging, object, multipart upload or job', async () => {
    const objects = await listObjects(world);
    const ended = followers.results.size;
    const res = await slowUpload(
      world,
      alice,
      SIZE,
      12 * MiB,
      () => waitFor('the follower to write parts', () => followerWriting(world)),
      { abortAfter: 18 * MiB },
    );
    expect(res.status).toBe(0);
    await expectNothingLeft(world, alice, follow, objects);
    await followersGaveUp(followers.results, ended);
  });

  it('an upload over MAX_FILE_SIZE (413 mid-upload) and one over the quota (at the end) leave nothing', async () => {
    const objects = await listObjects(world);
    const ended = followers.results.size;
    const tooLarge = await slowUpload(world, alice, 48 * MiB, 16 * MiB, () =>
      waitFor('the follower to write parts', () => followerWriting(world)),
    );
    expect(tooLarge.status).toBe(413);
    await expectNothingLeft(world, alice, follow, objects);
    await followersGaveUp(followers.results, ended);

    const aliceId = await userId(world, alice);
    await world.dataSource.query(`UPDATE users SET quota_bytes = $2 WHERE id = $1`, [aliceId, 10 * MiB]);
    try {
      // The follower reads the seal, then waits for an acceptance that never comes: the staging file goes.
      const overQuota = await slowUpload(world, alice, SIZE, 16 * MiB, () =>
        waitFor('the follower to write parts', () => followerWriting(world)),
      );
      expect(overQuota.status).toBe(413);
      expect(overQuota.body).toMatch(/quota/);
      await expectNothingLeft(world, alice, follow, objects);
      await followersGaveUp(followers.results, ended, 2);
    } finally {
      await world.dataSource.query(`UPDATE users SET quota_bytes = NULL WHERE id = $1`, [aliceId]);
    }
  });

  it('a follower whose lock session is killed gives up and leaves nothing; the encrypt-file job stores the file', async () => {
    const objects = await listObjects(world);
    const res = await slowUpload(world, alice, SIZE, 16 * MiB, async () => {
      await waitFor('the follower to write parts', () => followerWriting(world));
      const killed: Array<{ pid: number }> = await world.dataSource.query(
        `SELECT pg_terminate_backend(pid), pid FROM pg_locks WHERE locktype = 'advisory' AND granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      expect(killed).toHaveLength(1);
      await waitFor('its partial object to go', async () => !(await followerWriting(world)));
      expect(await listObjects(world)).toEqual(objects);
    });
    const id = acceptedId(res);
    expect((await followerResult(followers.results, id)).skipped).toBe(true);
    await waitForStored(world, id);
    expect((await encryptJobResult(world, id)).skipped).toBeUndefined();
    expect((await world.files.findById(id))?.attempts).toBe(1);
    await expectDownload(world, alice, id, SIZE);
  });

  it.runIf(store === 's3')(
    'an S3 outage while following: the follower aborts its multipart upload; the normal job fails the file as today',
    async () => {
      const s3 = world.s3!;
      const objects = await listObjects(world);
      const ended = followers.results.size;
      s3.proxy.inject({ operation: 'UploadPart', respond: 500 });
      try {
        const res = await slowUpload(world, alice, SIZE, 16 * MiB, () =>
          followersGaveUp(followers.results, ended),
        );
        const id = acceptedId(res);
        const row = await waitForStatus(world, id, 'failed', { timeoutMs: 45_000 });
        expect(row.error).toMatch(/UploadPart/);
        expect(row.error).toMatch(/500/);
        expect(row.sha256).toBeNull();
        // BullMQ marks the job failed once the worker's failure handling (the audit event) is over.
        await waitForJob(world, id, 'failed');
        expect(await auditCount(world, id, 'file.failed')).toBe(1);
        expect(await multipartUploads(world)).toEqual([]);
        expect(await listObjects(world)).toEqual(objects);
        // Not a verdict on the bytes: the encrypted staging file stays for an admin's retry, as today.
        expect(await tempFiles(world.config)).toEqual([id]);
        await world.files.delete(id);
        await rm(join(world.config.tempDir, id));
      } finally {
        s3.proxy.clear();
      }
    },
  );

  it('a record tampered with before the follower reads it: the follower stores nothing, the normal job fails it as today', async () => {
    // The follower starts late (no worker yet), so record 1 changes before it is read.
    await world.stopInProcessWorker();
    const objects = await listObjects(world);
    const res = await slowUpload(world, alice, SIZE, 16 * MiB, async () => {
      const [name] = await waitFor('the staging file', async () => {
        const names = await tempFiles(world.config);
        return names.length === 1 ? names : undefined;
      });
      await flipByte(join(world.config.tempDir, name!), 65 + (5 + MiB + 16) + 5 + 100);
      await world.startInProcessWorker();
      // It authenticates record 1, fails, and aborts what it had started.
      await waitFor('the follower to give up', async () => {
        const counts = await follow.getJobCounts('active', 'waiting');
        return counts.active + counts.waiting === 0;
      });
    });
    const id = acceptedId(res);
    expect((await followerResult(followers.results, id)).skipped).toBe(true);
    const row = await waitForStatus(world, id, 'failed');
    expect(row.error).toMatch(/^staging-integrity/);
    await waitForJob(world, id, 'failed');
    expect(await auditCount(world, id, 'file.failed')).toBe(1);
    expect(await auditCount(world, id, 'file.stored')).toBe(0);
    expect(await listObjects(world)).toEqual(objects);
    expect(await multipartUploads(world)).toEqual([]);
    await waitFor('the staging file to go', async () => (await tempFiles(world.config)).length === 0);
  });
});

async function flipByte(path: string, at: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0]! ^= 0x01;
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}

describe('a worker killed while it follows an upload', () => {
  let world: World;
  let carol: TestUser;

  beforeAll(async () => {
    world = await createWorld({
      store: 's3',
      env: { PIPELINE_MIN_BYTES: '8MiB', WORKER_LOCK_DURATION: '4s' },
    });
    carol = await createUser(world.server, 'pipe-kill');
  }, 60_000);

  afterAll(async () => {
    await killAllProcesses();
    await world?.close();
  });

  it('SIGKILL mid-upload: another worker stores the file once, byte-identical, and no multipart upload stays open', async () => {
    const workerA = await world.startWorker({ name: 'worker A' });
    let workerB: TestProcess | undefined;
    const res = await slowUpload(world, carol, SIZE, 16 * MiB, async () => {
      await waitFor('the follower to write parts', () => followerWriting(world), { workers: [workerA] });
      workerA.signal('SIGKILL');
      expect(await workerA.exited).toEqual({ code: null, signal: 'SIGKILL' });
      // What the crash left: the follower's open multipart upload.
      expect(await multipartUploads(world)).toHaveLength(1);
      workerB = await world.startWorker({ name: 'worker B' });
    });
    const id = acceptedId(res);
    const workers = [workerA, workerB!];
    await waitForStored(world, id, { workers });
    await waitFor('no open multipart upload', async () => (await multipartUploads(world)).length === 0, {
      workers,
    });
    expect((await listObjects(world)).filter((key) => key.includes(id))).toHaveLength(1);
    expect(await auditCount(world, id, 'file.stored')).toBe(1);
    await expectDownload(world, carol, id, SIZE);
    expect(await tempFiles(world.config)).toEqual([]);
  });
});

describe('pipelined resumable (tus) uploads', () => {
  let world: World;
  let bob: TestUser;
  let follow: Queue;

  beforeAll(async () => {
    world = await createWorld({
      store: 's3',
      workers: 'in-process',
      env: { PIPELINE_MIN_BYTES: '8MiB', PIPELINE_IDLE: '1s' },
    });
    bob = await createUser(world.server, 'pipe-tus');
    follow = followQueue(world);
  }, 60_000);

  afterAll(async () => {
    await follow?.close();
    await world?.close();
  });

  it('a pause longer than PIPELINE_IDLE: the follower gives up and leaves nothing; the resumed upload is stored whole', async () => {
    const body = bytesOf(SIZE);
    const first = await tusUpload(world.base, bob, body, { chunkSize: 4 * MiB, abortAfter: 12 * MiB });
    expect(first.aborted).toBe(true);
    await waitFor('the follower to write parts', () => followerWriting(world));
    // Idle for longer than PIPELINE_IDLE: the follower aborts its own multipart upload and ends.
    await waitFor(
      'the follower to give up',
      async () => {
        const counts = await follow.getJobCounts('active', 'waiting');
        return counts.active === 0 && counts.waiting === 0 && (await multipartUploads(world)).length === 0;
      },
      { timeoutMs: 10_000 },
    );
    expect((await world.files.findById(first.id))?.status).toBe('receiving');
    await sleep(200);
    const resumed = await tusUpload(world.base, bob, body, { chunkSize: 4 * MiB, uploadUrl: first.url });
    expect(resumed.aborted).toBe(false);
    await waitForStored(world, first.id);
    await expectDownload(world, bob, first.id, SIZE);
    expect(await multipartUploads(world)).toEqual([]);
  });
});
