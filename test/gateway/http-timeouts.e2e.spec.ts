import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempFiles } from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * Slow links may take as long as they need (Node's default 5-minute cap on a whole request is off); a
 * connection that goes silent for HTTP_IDLE_TIMEOUT is closed, and what it was uploading is not kept.
 */
describe('HTTP timeouts', () => {
  let world: World;
  let alice: TestUser;

  beforeAll(async () => {
    world = await createWorld({ env: { HTTP_IDLE_TIMEOUT: '1s' } });
    alice = await createUser(world.server, `alice_${world.id}`);
  }, 60_000);

  afterAll(async () => {
    await world?.close();
  });

  /** A multipart upload whose body is written piece by piece, `gapMs` apart. */
  function trickle(
    pieces: number,
    gapMs: number,
  ): Promise<{ status: number; body: string } | { error: string }> {
    const boundary = `----tess${randomBytes(8).toString('hex')}`;
    return new Promise((resolve) => {
      const req = http.request(`${world.base}/api/v1/uploads`, {
        method: 'POST',
        headers: {
          ...alice.auth,
          'Content-Type': `multipart/form-data; boundary=${boundary}`,
          'Transfer-Encoding': 'chunked',
        },
      });
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', (error) => resolve({ error: error.message }));
      req.write(
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.bin"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      );
      let sent = 0;
      const next = () => {
        if (req.destroyed) return;
        if (sent === pieces) {
          req.end(`\r\n--${boundary}--\r\n`);
          return;
        }
        sent += 1;
        req.write(randomBytes(1024));
        setTimeout(next, gapMs);
      };
      next();
    });
  }

  it('has no cap on a whole request', () => {
    expect((world.app.getHttpServer() as http.Server).requestTimeout).toBe(0);
  });

  it('accepts an upload that trickles in for longer than the idle timeout, never pausing that long', async () => {
    const res = await trickle(12, 300);
    expect(res).toMatchObject({ status: 202 });
    const [file] = JSON.parse((res as { body: string }).body).files;
    expect(file.size).toBe(12 * 1024);
  });

  it('closes an upload that goes silent for longer than the idle timeout and keeps nothing of it', async () => {
    const count = async () =>
      (await world.dataSource.query(`SELECT count(*)::int AS n FROM files`))[0].n as number;
    const before = await tempFiles(world.config);
    const rowsBefore = await count();
    const res = await trickle(2, 2_500);
    expect(res).toHaveProperty('error');
    // The gateway cleans up once it notices the closed connection.
    for (let i = 0; i < 40 && (await tempFiles(world.config)).length > before.length; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await tempFiles(world.config)).toEqual(before);
    expect(await count()).toBe(rowsBefore);
  });
});
