import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobLocks } from '../../apps/crypto-worker/src/jobs/job-locks.js';
import { createWorld, type World } from '../support/world.js';

let world: World;
let admin: pg.Client;

beforeAll(async () => {
  world = await createWorld({ gateway: 'none', env: { WORKER_CONCURRENCY: '2' } });
  admin = new pg.Client({ connectionString: world.config.database.url });
  await admin.connect();
});

afterAll(async () => {
  await admin?.end();
  await world?.close();
});

/** Backends connected to this test's database, other than `admin`. */
async function sessions(): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
  );
  return rows[0]!.n;
}

/** Advisory locks held on this database right now. */
async function heldLocks(): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
      WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()`,
  );
  return rows[0]!.n;
}

describe('JobLocks', () => {
  it('reuses one session for consecutive jobs and releases each lock', async () => {
    const locks = new JobLocks(world.config);
    try {
      for (let i = 0; i < 5; i++) {
        const held = await locks.exclusive(randomUUID(), undefined, () => heldLocks());
        expect(held).toBe(1);
      }
      expect(await heldLocks()).toBe(0);
      await expect.poll(sessions).toBe(1);
    } finally {
      await locks.onApplicationShutdown();
    }
    await expect.poll(sessions).toBe(0);
  });

  it('makes a second run of the same file wait until the first one is done', async () => {
    const locks = new JobLocks(world.config);
    try {
      const fileId = randomUUID();
      const order: string[] = [];
      let release!: () => void;
      const first = locks.exclusive(fileId, undefined, async () => {
        order.push('first:start');
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        order.push('first:end');
      });
      await expect.poll(() => order.length).toBe(1);
      const second = locks.exclusive(fileId, undefined, async () => {
        order.push('second');
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(order).toEqual(['first:start']);
      release();
      await Promise.all([first, second]);
      expect(order).toEqual(['first:start', 'first:end', 'second']);
      expect(await heldLocks()).toBe(0);
    } finally {
      await locks.onApplicationShutdown();
    }
  });

  it('stops waiting when the job is aborted, and leaves no lock behind', async () => {
    const locks = new JobLocks(world.config);
    try {
      const fileId = randomUUID();
      let release!: () => void;
      const first = locks.exclusive(
        fileId,
        undefined,
        () =>
          new Promise<void>((resolve) => {
            release = resolve;
          }),
      );
      await expect.poll(heldLocks).toBe(1);
      const controller = new AbortController();
      let ran = false;
      const second = locks.exclusive(fileId, controller.signal, async () => {
        ran = true;
      });
      setTimeout(() => controller.abort(new Error('worker shutting down')), 100);
      await expect(second).rejects.toThrow();
      expect(ran).toBe(false);
      release();
      await first;
      await expect.poll(heldLocks).toBe(0);
    } finally {
      await locks.onApplicationShutdown();
    }
  });

  it('releases the lock when the job fails, and keeps the session', async () => {
    const locks = new JobLocks(world.config);
    try {
      await expect(
        locks.exclusive(randomUUID(), undefined, async () => {
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await heldLocks()).toBe(0);
      await expect.poll(sessions).toBe(1);
    } finally {
      await locks.onApplicationShutdown();
    }
  });
});
