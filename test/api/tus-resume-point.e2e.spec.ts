import { randomBytes } from 'node:crypto';
import { appendFile, open, truncate } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanStaging } from '#common';
import { REDIS } from '../../apps/gateway/src/infra/redis.module.js';
import { MiB, sha256 } from '../support/bytes.js';
import { downloadContent, waitForStored } from '../support/client.js';
import { stagedPath } from '../support/staging.js';
import { TUS, tusRequests } from '../support/tus.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * A PATCH costs its own bytes: the gateway keeps where each unfinished upload's staging file ends (its
 * resume point) in Redis and starts there, instead of walking every record staged so far. The point is a
 * hint checked against the file: a crash between the disk and Redis, a torn record, a lost or wrong key
 * all end in the offset the staging format itself gives (docs/format.md, "Appends and recovery").
 */
describe('tus resume points', () => {
  let world: World;
  let alice: TestUser;
  let redis: Redis;

  beforeAll(async () => {
    world = await createWorld({ workers: 'in-process' });
    alice = await createUser(world.server, `alice_${world.id}`);
    redis = world.app.get<Redis>(REDIS);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  const pointKey = (id: string) => `${world.config.redis.prefix}:tus-layout:${id}`;

  const tus = tusRequests(() => world.server);
  const create = (length: number) => tus.create(alice, length);
  const patch = (id: string, offset: number, body: Buffer) => tus.patch(alice, id, offset, body);
  const offsetOf = (id: string) => tus.head(alice, id).then((res) => Number(res.headers['upload-offset']));

  async function layoutOf(id: string) {
    const handle = await open(stagedPath(world.config, id), 'r');
    try {
      return await scanStaging(handle);
    } finally {
      await handle.close();
    }
  }

  it('keeps the point after every PATCH, matching the file; it is gone once the upload is complete', async () => {
    const body = randomBytes(3 * MiB + 5);
    const id = await create(body.length);
    expect(await redis.exists(pointKey(id))).toBe(0);
    for (let at = 0; at < 3 * MiB; at += MiB) {
      await patch(id, at, body.subarray(at, at + MiB)).expect(204);
      const kept = JSON.parse((await redis.get(pointKey(id)))!);
      const layout = await layoutOf(id);
      expect(kept).toEqual({
        dataRecords: layout.dataRecords,
        dataLength: at + MiB,
        dataEnd: layout.dataEnd,
        lastRecordStart: layout.lastRecordStart,
      });
      expect(await redis.pttl(pointKey(id))).toBeGreaterThan(0);
    }
    await patch(id, 3 * MiB, body.subarray(3 * MiB)).expect(204);
    expect(await redis.exists(pointKey(id))).toBe(0);
    await waitForStored(world, id);
    expect((await downloadContent(world, alice, id)).sha256).toBe(sha256(body));
  });

  it('DELETE removes the point with the upload', async () => {
    const id = await create(10);
    await patch(id, 0, Buffer.from('abc')).expect(204);
    expect(await redis.exists(pointKey(id))).toBe(1);
    await request(world.server)
      .delete(`/api/v1/tus/${id}`)
      .set({ ...alice.auth, ...TUS })
      .expect(204);
    expect(await redis.exists(pointKey(id))).toBe(0);
  });

  it('a gateway that died after writing a chunk but before keeping its point: the next PATCH finds the chunk', async () => {
    const body = randomBytes(3 * MiB);
    const id = await create(body.length);
    await patch(id, 0, body.subarray(0, MiB)).expect(204);
    const stale = await redis.get(pointKey(id));
    await patch(id, MiB, body.subarray(MiB, 2 * MiB)).expect(204);
    await redis.set(pointKey(id), stale!);
    expect(await offsetOf(id)).toBe(2 * MiB);
    await patch(id, 2 * MiB, body.subarray(2 * MiB)).expect(204);
    await waitForStored(world, id);
    expect((await downloadContent(world, alice, id)).sha256).toBe(sha256(body));
  });

  it('a crash mid-record (a torn frame after the point) is dropped, exactly as the staging format says', async () => {
    const body = randomBytes(2 * MiB + 100);
    const id = await create(body.length);
    await patch(id, 0, body.subarray(0, MiB)).expect(204);
    // Half a record's frame: a length prefix for 1 MiB and a few bytes, as a write cut by a crash leaves.
    await appendFile(stagedPath(world.config, id), Buffer.from([0, 16, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]));
    expect(await offsetOf(id)).toBe(MiB);
    await patch(id, MiB, body.subarray(MiB)).expect(204);
    await waitForStored(world, id);
    expect((await downloadContent(world, alice, id)).sha256).toBe(sha256(body));
  });

  it.each<[string, (id: string, kept: string) => Promise<unknown>]>([
    ['lost (Redis flushed or restarted)', (id) => redis.del(pointKey(id))],
    ['not a point at all', (id) => redis.set(pointKey(id), 'garbage{')],
    [
      'ahead of the file (the staging file was cut back)',
      async (id, kept) => {
        const point = JSON.parse(kept);
        await truncate(stagedPath(world.config, id), point.lastRecordStart);
      },
    ],
    [
      'pointing inside a record',
      (id, kept) => {
        const point = JSON.parse(kept);
        return redis.set(
          pointKey(id),
          JSON.stringify({ ...point, lastRecordStart: point.lastRecordStart + 7 }),
        );
      },
    ],
  ])('a point %s costs one walk of the file, never a wrong offset', async (_, spoil) => {
    const body = randomBytes(2 * MiB + 3);
    const id = await create(body.length);
    await patch(id, 0, body.subarray(0, MiB + 1)).expect(204);
    const kept = (await redis.get(pointKey(id)))!;
    await spoil(id, kept);
    const offset = await offsetOf(id);
    expect(offset).toBe((await layoutOf(id)).dataLength);
    await patch(id, offset, body.subarray(offset)).expect(204);
    await waitForStored(world, id);
    expect((await downloadContent(world, alice, id)).sha256).toBe(sha256(body));
  });
});
