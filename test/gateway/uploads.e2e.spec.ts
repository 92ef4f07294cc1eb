import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Queue } from 'bullmq';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileRepository, UserRepository } from '#common';
import { TempSweeperService } from '../../apps/gateway/src/uploads/temp-sweeper.service.js';
import { bytesOf, postMultipart } from '../support/multipart.js';
import { decryptStaged, rawStaged, stagedLength } from '../support/staging.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

const LIMIT = 256 * 1024;
let world: World;
let app: NestExpressApplication;
let base: string;
let queue: Queue;
let alice: TestUser;

async function tempFiles(dir = world.config.tempDir): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

async function assertNothingStored(user: TestUser) {
  expect(await tempFiles()).toEqual([]);
  const rows = await app.get(FileRepository).listForOwner(await lookup(user), 100);
  expect(rows.items).toEqual([]);
  expect(await queue.getJobCounts()).toMatchObject({ waiting: 0, active: 0, delayed: 0 });
}

async function lookup(user: TestUser): Promise<string> {
  return (await app.get(UserRepository).findByUsername(user.username))!.id;
}

beforeAll(async () => {
  world = await createWorld({ env: { MAX_FILE_SIZE: String(LIMIT), MAX_FILES_PER_REQUEST: '5' } });
  app = world.app;
  base = world.base;
  queue = world.queue;
  alice = await createUser(app.getHttpServer(), `alice_${world.id}`);
});

afterAll(async () => {
  await world?.close();
});

describe('POST /api/v1/uploads', () => {
  it('streams several files to temp files, records queued rows and enqueues one reference-only job each', async () => {
    const one = bytesOf(1000);
    const res = await request(app.getHttpServer())
      .post('/api/v1/uploads')
      .set(alice.auth)
      .attach('file', one, { filename: 'one.bin', contentType: 'application/x-test' })
      .attach('file', Buffer.alloc(0), { filename: 'empty.txt', contentType: 'text/plain' })
      .expect(202);
    expect(res.body.files).toHaveLength(2);
    const [a, b] = res.body.files;
    expect(a).toEqual({
      id: expect.any(String),
      filename: 'one.bin',
      size: 1000,
      status: 'queued',
      jobId: a.id,
    });
    expect(b).toMatchObject({ filename: 'empty.txt', size: 0, status: 'queued', jobId: b.id });

    // Staged encrypted: not the plaintext, but it decrypts to it under the key the row wraps.
    const row = (await app.get(FileRepository).findById(a.id))!;
    expect(row.keyRef).toMatch(/^local:/);
    expect((await rawStaged(world.config, a.id)).indexOf(one.subarray(0, 32))).toBe(-1);
    expect(await decryptStaged(world.config, row)).toEqual(one);
    expect(await stagedLength(world.config, a.id)).toBe(1000);
    expect((await stat(join(world.config.tempDir, a.id))).mode & 0o777).toBe(0o600);
    expect(row).toMatchObject({
      status: 'queued',
      size: 1000,
      contentType: 'application/x-test',
      filename: 'one.bin',
    });

    const job = (await queue.getJob(a.id))!;
    expect(job.name).toBe('encrypt-file');
    expect(job.data).toEqual({ fileId: a.id, ownerId: await lookup(alice) });
    expect(job.opts.attempts).toBe(world.config.worker.jobAttempts);
    await queue.obliterate({ force: true });
    await app.get(FileRepository).delete(a.id);
    await app.get(FileRepository).delete(b.id);
    rmSync(join(world.config.tempDir, a.id));
    rmSync(join(world.config.tempDir, b.id));
  });

  it('accepts exactly MAX_FILE_SIZE and refuses one byte more, even without Content-Length', async () => {
    const exact = await postMultipart(
      `${base}/api/v1/uploads`,
      [{ filename: 'exact.bin', body: { size: LIMIT } }],
      {
        headers: alice.auth,
        chunked: true,
      },
    );
    expect(exact.status).toBe(202);
    const id = JSON.parse(exact.body).files[0].id;
    expect(await stagedLength(world.config, id)).toBe(LIMIT);
    await queue.obliterate({ force: true });
    await app.get(FileRepository).delete(id);
    rmSync(join(world.config.tempDir, id));

    for (const chunked of [true, false]) {
      const over = await postMultipart(
        `${base}/api/v1/uploads`,
        [{ filename: 'over.bin', body: { size: LIMIT + 1 } }],
        {
          headers: alice.auth,
          chunked,
        },
      );
      expect(over.status).toBe(413);
      expect(JSON.parse(over.body)).toEqual({
        statusCode: 413,
        error: 'Payload Too Large',
        message: `"over.bin" is larger than the 256 KiB limit (${LIMIT} bytes); nothing from this request was stored.`,
      });
      await assertNothingStored(alice);
    }
  });

  it('refuses the whole request when any file is too big, keeping none of the others', async () => {
    const res = await postMultipart(
      `${base}/api/v1/uploads`,
      [
        { filename: 'ok.bin', body: { size: 1000 } },
        { filename: 'also ok.txt', body: { size: 10 } },
        { filename: 'big.bin', body: { size: LIMIT * 3 } },
        { filename: 'after.bin', body: { size: 10 } },
      ],
      { headers: alice.auth },
    );
    expect(res.status).toBe(413);
    // The message names the big file and says the others were not stored either.
    expect(JSON.parse(res.body).message).toBe(
      `"big.bin" is larger than the 256 KiB limit (${LIMIT} bytes); nothing from this request was stored, ` +
        'not "ok.bin", "also ok.txt" either (a request is stored whole or not at all): send them again without this file.',
    );
    await assertNothingStored(alice);
  });

  it('cleans up after a client that disconnects mid-upload', async () => {
    await postMultipart(`${base}/api/v1/uploads`, [{ filename: 'partial.bin', body: { size: LIMIT } }], {
      headers: alice.auth,
      abortAfter: 100_000,
    });
    await new Promise((r) => setTimeout(r, 300));
    await assertNothingStored(alice);
  });

  it('rejects malformed and unexpected requests with readable errors', async () => {
    const server = app.getHttpServer();
    const noFile = await request(server).post('/api/v1/uploads').set(alice.auth).field('note', 'x');
    expect(noFile.status).toBe(400);
    expect(noFile.body.message).toContain('No file in the request');
    const json = await request(server).post('/api/v1/uploads').set(alice.auth).send({ file: 'x' });
    expect(json.status).toBe(415);
    const wrongField = await request(server)
      .post('/api/v1/uploads')
      .set(alice.auth)
      .attach('upload', bytesOf(10), 'x.bin');
    expect(wrongField.status).toBe(400);
    expect(wrongField.body.message).toContain('Unexpected file field "upload"');
    const broken = await request(server)
      .post('/api/v1/uploads')
      .set(alice.auth)
      .set('Content-Type', 'multipart/form-data; boundary=xyz')
      .send('--xyz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc');
    expect(broken.status).toBe(400);
    expect(broken.body.message).toContain('Malformed multipart request');
    const tooMany = await postMultipart(
      `${base}/api/v1/uploads`,
      Array.from({ length: 6 }, (_, i) => ({ filename: `f${i}`, body: { size: 10 } })),
      { headers: alice.auth },
    );
    expect(tooMany.status).toBe(413);
    expect(JSON.parse(tooMany.body).message).toContain('At most 5 files per request');
    await assertNothingStored(alice);
  });

  it('requires authentication, and CSRF for session uploads', async () => {
    const server = app.getHttpServer();
    await request(server).post('/api/v1/uploads').attach('file', bytesOf(10), 'x.bin').expect(401);
    await alice.agent.post('/api/v1/uploads').attach('file', bytesOf(10), 'x.bin').expect(403);
    await assertNothingStored(alice);
    const ok = await alice.agent
      .post('/api/v1/uploads')
      .set('X-CSRF-Token', alice.csrf)
      .attach('file', bytesOf(10), 'x.bin')
      .expect(202);
    const id = ok.body.files[0].id;
    await queue.obliterate({ force: true });
    await app.get(FileRepository).delete(id);
    rmSync(join(world.config.tempDir, id));
  });

  it('never lets a hostile filename reach the file system', async () => {
    const names = [
      '../../escape.txt',
      '..\\..\\win.txt',
      '/etc/passwd',
      'a\u202Efdp.txt',
      'x'.repeat(10_000),
    ];
    for (const filename of names) {
      const res = await postMultipart(`${base}/api/v1/uploads`, [{ filename, body: { size: 5 } }], {
        headers: alice.auth,
      });
      expect(res.status).toBe(202);
      const file = JSON.parse(res.body).files[0];
      expect(file.filename).not.toMatch(/[\\/\u202E]/);
      expect(file.filename.length).toBeLessThanOrEqual(255);
      expect(await tempFiles()).toEqual([file.id]);
      await queue.obliterate({ force: true });
      await app.get(FileRepository).delete(file.id);
      rmSync(join(world.config.tempDir, file.id));
    }
    // The classic disguise: shown as "aexe.txt", really .exe; a blocked extension is refused, nothing kept.
    const disguised = await postMultipart(
      `${base}/api/v1/uploads`,
      [{ filename: 'a\u202Etxt.exe', body: { size: 5 } }],
      {
        headers: alice.auth,
      },
    );
    expect(disguised.status).toBe(415);
    expect(JSON.parse(disguised.body).message).toBe(
      '"atxt.exe" was refused: files named .exe are blocked (BLOCKED_TYPES); nothing was stored.',
    );
    expect(await tempFiles()).toEqual([]);
  });
});

describe('temp sweeper', () => {
  it('removes old orphans but never the temp file of a queued upload', async () => {
    const res = await request(app.getHttpServer())
      .post('/api/v1/uploads')
      .set(alice.auth)
      .attach('file', bytesOf(10), 'q.bin');
    const queued = res.body.files[0].id;
    const orphan = join(world.config.tempDir, '0b7a3c1e-8c2f-4e55-9d0f-2b1f0f4c9a11');
    await writeFile(orphan, 'left behind by a crashed gateway');
    const fresh = join(world.config.tempDir, '1b7a3c1e-8c2f-4e55-9d0f-2b1f0f4c9a11');
    await writeFile(fresh, 'still being uploaded');
    const old = new Date(Date.now() - world.config.tempMaxAgeMs - 60_000);
    await utimes(orphan, old, old);
    await utimes(join(world.config.tempDir, queued), old, old);

    const removed = await app.get(TempSweeperService).sweep();
    expect(removed).toEqual(['0b7a3c1e-8c2f-4e55-9d0f-2b1f0f4c9a11']);
    expect((await tempFiles()).sort()).toEqual([queued, '1b7a3c1e-8c2f-4e55-9d0f-2b1f0f4c9a11'].sort());
    await queue.obliterate({ force: true });
    await app.get(FileRepository).delete(queued);
    rmSync(join(world.config.tempDir, queued));
    rmSync(fresh);
  });
});

describe('failure modes', () => {
  it('answers 507 and keeps nothing when the temp volume is full', async () => {
    const dir = join(world.config.dataDir, 'tiny-tmp');
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
    const full = await createWorld({ gateway: 'none', env: { TEMP_DIR: dir, MAX_FILE_SIZE: '1MiB' } });
    const gateway = (await full.startGateway()).app;
    try {
      const user = await createUser(gateway.getHttpServer(), `full_${full.id}`);
      const res = await request(gateway.getHttpServer())
        .post('/api/v1/uploads')
        .set(user.auth)
        .attach('file', bytesOf(512 * 1024), 'big.bin');
      expect(res.status).toBe(507);
      expect(res.body.message).toContain('no room left');
      expect(await tempFiles(dir)).toEqual([]);
    } finally {
      await gateway.close();
      execFileSync('umount', [dir]);
      await full.close();
    }
  });

  it('answers 503 and keeps nothing when Redis is down at enqueue time', async () => {
    const down = await createWorld({ gateway: 'none', env: { REDIS_URL: 'redis://127.0.0.1:1' } });
    // Bearer auth needs only PostgreSQL: create the token with a gateway that has Redis.
    const helper = (await down.startGateway({ ...down.config, redis: world.config.redis })).app;
    const user = await createUser(helper.getHttpServer(), `nored_${down.id}`);
    await helper.close();
    const gateway = (await down.startGateway()).app;
    try {
      const res = await request(gateway.getHttpServer())
        .post('/api/v1/uploads')
        .set(user.auth)
        .attach('file', bytesOf(100), 'x.bin');
      expect(res.status).toBe(503);
      expect(res.body.message).toContain('nothing was stored');
      expect(await tempFiles(down.config.tempDir)).toEqual([]);
      const id = (await gateway.get(UserRepository).findByUsername(user.username))!.id;
      expect((await gateway.get(FileRepository).listForOwner(id, 10)).items).toEqual([]);
    } finally {
      await gateway.close();
      await down.close();
    }
  });
});
