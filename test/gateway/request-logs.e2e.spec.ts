import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_ENTRY } from '../support/paths.js';
import { freePort } from '../support/ports.js';
import { killAllProcesses, startProcess } from '../support/processes.js';
import { createUser, TEST_PASSWORD } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/** What a real gateway process writes to its log (JSON lines: stdout is not a terminal here). */

let world: World;

beforeAll(async () => {
  world = await createWorld({ gateway: 'process' });
}, 60_000);

afterAll(async () => {
  await killAllProcesses();
  await world?.close();
});

const jsonLines = (output: string): Record<string, unknown>[] =>
  output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('request logs', () => {
  it('never contain credentials from the query string, even of a refused request', async () => {
    const gateway = world.gatewayProcesses[0]!;
    const res = await fetch(`${world.base}/api/v1/files?limit=1&access_token=tess_QUERYSECRET&x=1`);
    expect(res.status).toBe(401);
    await gateway.waitForOutput(/access_token=\[redacted\]&x=1/, 5_000);
    expect(gateway.output()).not.toContain('QUERYSECRET');
    const line = jsonLines(gateway.output()).find((l) => l.reqId === res.headers.get('x-request-id'));
    expect(line).toMatchObject({
      app: 'gateway',
      level: 40,
      req: { method: 'GET', url: '/api/v1/files?limit=1&access_token=[redacted]&x=1' },
      res: { statusCode: 401 },
    });
  });

  it('never contain a share link token, of a page, a refused password or a download', async () => {
    const gateway = world.gatewayProcesses[0]!;
    const token = `${'Q'.repeat(20)}SHARETOKENSECRET${'Q'.repeat(7)}`;
    const paths = [`/s/${token}`, `/s/${token}/content`, `/s/${token}/content?x=1`];
    for (const path of paths) expect((await fetch(`${world.base}${path}`)).status).toBe(404);
    const post = await fetch(`${world.base}/s/${token}`, { method: 'POST' });
    expect(post.status).toBe(403);
    await gateway.waitForOutput(/\/s\/\[redacted\]\/content\?x=1/, 5_000);
    expect(gateway.output()).not.toContain('SHARETOKENSECRET');
    const urls = jsonLines(gateway.output())
      .map((l) => (l.req as { url?: string } | undefined)?.url)
      .filter((u) => u?.startsWith('/s/'));
    expect(urls).toEqual(
      expect.arrayContaining(['/s/[redacted]', '/s/[redacted]/content', '/s/[redacted]/content?x=1']),
    );
  });

  it('carry the request id on every Nest Logger call made while serving the request', async () => {
    const username = `rehash_${world.id}`;
    await createUser(world.base, username);
    // A gateway with a higher argon2 time cost rehashes at the next login and says so (AuthService).
    const port = await freePort();
    const stricter = startProcess('gateway-stricter', GATEWAY_ENTRY, {
      ...world.env,
      LOG_LEVEL: 'info',
      PORT: String(port),
      ARGON2_TIME_COST: '3',
    });
    await stricter.waitForOutput(/gateway listening on/, 30_000);
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': `login-${world.id}-1` },
      body: JSON.stringify({ username, password: TEST_PASSWORD, name: 'rehash' }),
    });
    expect(res.status).toBe(201);
    await stricter.waitForOutput(/Rehashed the password/, 5_000);
    const rehashed = jsonLines(stricter.output()).find((l) => String(l.msg).startsWith('Rehashed'));
    expect(rehashed).toMatchObject({ app: 'gateway', context: 'AuthService', reqId: `login-${world.id}-1` });
    await stricter.stop(5_000);
  }, 60_000);
});
