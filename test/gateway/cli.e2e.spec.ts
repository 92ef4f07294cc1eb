import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, startStack, type TestStack } from '../support/apps.js';
import { bytesOf } from '../support/multipart.js';
import type { TestEnv } from '../support/test-env.js';
import { createUser } from '../support/users.js';

const run = promisify(execFile);
const CLI = new URL('../../dist/scripts/tess-cli.js', import.meta.url).pathname;
let stack: TestStack;
let env: TestEnv;
let gw: RunningGateway;

beforeAll(async () => {
  stack = await startStack();
  ({ env, gw } = stack);
});

afterAll(async () => {
  await stack?.close();
});

describe('npm run tess (command-line client, built by npm test)', () => {
  it('uploads, lists, reports status and downloads a byte-identical copy', async () => {
    const user = await createUser(gw.app.getHttpServer(), `cli_${env.id}`);
    const cliEnv = { ...process.env, TESS_URL: gw.url, TESS_TOKEN: user.token };
    const data = bytesOf(2 * 1024 * 1024 + 7);
    const input = join(env.config.dataDir, 'in.bin');
    await writeFile(input, data);
    const sha256 = createHash('sha256').update(data).digest('hex');

    const up = await run(process.execPath, [CLI, 'upload', input], { env: cliEnv });
    const [id, hash, name] = up.stdout.trim().split(/\s+/);
    expect(hash).toBe(sha256);
    expect(name).toBe('in.bin');

    expect((await run(process.execPath, [CLI, 'ls'], { env: cliEnv })).stdout).toContain(id!);
    const status = JSON.parse((await run(process.execPath, [CLI, 'status', id!], { env: cliEnv })).stdout);
    expect(status).toMatchObject({ id, status: 'completed' });

    const out = join(env.config.dataDir, 'out.bin');
    await run(process.execPath, [CLI, 'download', id!, out], { env: cliEnv });
    expect(
      createHash('sha256')
        .update(await readFile(out))
        .digest('hex'),
    ).toBe(sha256);
  });

  it('explains a missing token and a server error in one line, exiting non-zero', async () => {
    const noToken = await run(process.execPath, [CLI, 'ls'], {
      env: { ...process.env, TESS_URL: gw.url, TESS_TOKEN: '' },
    }).catch((e: { code: number; stderr: string }) => e);
    expect(noToken).toMatchObject({ code: 1 });
    expect((noToken as { stderr: string }).stderr).toContain('Set TESS_TOKEN');
    const bad = await run(process.execPath, [CLI, 'ls'], {
      env: { ...process.env, TESS_URL: gw.url, TESS_TOKEN: 'tess_nope' },
    }).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { stderr: string }).stderr).toMatch(
      /^401 Unauthorized: The bearer token is invalid or has been revoked/,
    );
  });
});
