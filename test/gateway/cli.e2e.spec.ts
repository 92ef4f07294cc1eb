import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../support/bytes.js';
import { bytesOf } from '../support/multipart.js';
import { CLI_ENTRY } from '../support/paths.js';
import { createUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

const run = promisify(execFile);
const CLI = CLI_ENTRY;
let world: World;

beforeAll(async () => {
  world = await createWorld({ workers: 'in-process' });
});

afterAll(async () => {
  await world?.close();
});

describe('npm run tess (command-line client, built by npm test)', () => {
  it('uploads, lists, reports status and downloads a byte-identical copy', async () => {
    const user = await createUser(world.app.getHttpServer(), `cli_${world.id}`);
    const cliEnv = { ...process.env, TESS_URL: world.base, TESS_TOKEN: user.token };
    const data = bytesOf(2 * 1024 * 1024 + 7);
    const input = join(world.config.dataDir, 'in.bin');
    await writeFile(input, data);
    const expected = sha256(data);

    const up = await run(process.execPath, [CLI, 'upload', input], { env: cliEnv });
    const [id, hash, name] = up.stdout.trim().split(/\s+/);
    expect(hash).toBe(expected);
    expect(name).toBe('in.bin');

    expect((await run(process.execPath, [CLI, 'ls'], { env: cliEnv })).stdout).toContain(id!);
    const status = JSON.parse((await run(process.execPath, [CLI, 'status', id!], { env: cliEnv })).stdout);
    expect(status).toMatchObject({ id, status: 'completed' });

    const out = join(world.config.dataDir, 'out.bin');
    await run(process.execPath, [CLI, 'download', id!, out], { env: cliEnv });
    expect(sha256(await readFile(out))).toBe(expected);
  });

  it('explains a missing token and a server error in one line, exiting non-zero', async () => {
    const noToken = await run(process.execPath, [CLI, 'ls'], {
      env: { ...process.env, TESS_URL: world.base, TESS_TOKEN: '' },
    }).catch((e: { code: number; stderr: string }) => e);
    expect(noToken).toMatchObject({ code: 1 });
    expect((noToken as { stderr: string }).stderr).toContain('Set TESS_TOKEN');
    const bad = await run(process.execPath, [CLI, 'ls'], {
      env: { ...process.env, TESS_URL: world.base, TESS_TOKEN: 'tess_nope' },
    }).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { stderr: string }).stderr).toMatch(
      /^401 Unauthorized: The bearer token is invalid or has been revoked/,
    );
  });
});
