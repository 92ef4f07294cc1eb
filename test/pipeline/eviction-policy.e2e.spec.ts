import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEvictionPolicy } from '../../apps/crypto-worker/src/encrypt/eviction-policy.js';

/**
 * SECURITY checklist item 24 against a real Redis: this test's own redis-server (the shared one must keep
 * its noeviction policy), started with the policy a careless operator might leave in place.
 */
let server: ChildProcess | undefined;
let dir: string;
let port: number;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function startRedis(extra: string[]): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...extra,
    ],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    // Refused connections while the server starts are expected; connect() reports them.
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return child;
    } catch (error) {
      probe.disconnect();
      if (Date.now() > deadline || child.exitCode !== null) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function stopRedis(): Promise<void> {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((resolve) => server!.once('exit', resolve));
  server.kill('SIGTERM');
  await exited;
}

function recordingLogger() {
  const lines: Array<{ level: 'error' | 'warn'; message: string }> = [];
  return {
    lines,
    error: (message: unknown) => lines.push({ level: 'error', message: String(message) }),
    warn: (message: unknown) => lines.push({ level: 'warn', message: String(message) }),
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tess-redis-'));
  port = await freePort();
});

afterAll(async () => {
  await stopRedis();
  await rm(dir, { recursive: true, force: true });
});

describe('the worker checks Redis eviction at startup (SECURITY 24)', () => {
  it('reports an evicting policy as an error naming the fix, and stays quiet once it is noeviction', async () => {
    server = await startRedis(['--maxmemory-policy', 'allkeys-lru']);
    const redis = new Redis({ port, maxRetriesPerRequest: 1 });
    try {
      const logger = recordingLogger();
      expect(await checkEvictionPolicy(redis, logger)).toBe('allkeys-lru');
      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]!.level).toBe('error');
      expect(logger.lines[0]!.message).toContain('"allkeys-lru"');
      expect(logger.lines[0]!.message).toContain('CONFIG SET maxmemory-policy noeviction');

      await redis.config('SET', 'maxmemory-policy', 'noeviction');
      const quiet = recordingLogger();
      expect(await checkEvictionPolicy(redis, quiet)).toBe('noeviction');
      expect(quiet.lines).toEqual([]);
    } finally {
      redis.disconnect();
      await stopRedis();
    }
  });

  it('warns, without failing, when Redis does not allow CONFIG (managed services)', async () => {
    server = await startRedis(['--rename-command', 'CONFIG', '""']);
    const redis = new Redis({ port, maxRetriesPerRequest: 1 });
    try {
      const logger = recordingLogger();
      expect(await checkEvictionPolicy(redis, logger)).toBeNull();
      expect(logger.lines).toHaveLength(1);
      expect(logger.lines[0]!.level).toBe('warn');
      expect(logger.lines[0]!.message).toContain('make sure it is "noeviction"');
    } finally {
      redis.disconnect();
      await stopRedis();
    }
  });
});
