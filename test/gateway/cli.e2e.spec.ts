import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, sha256 } from '../support/bytes.js';
import { auditCount, waitFor } from '../support/client.js';
import { bytesOf } from '../support/multipart.js';
import { CLI_ENTRY, ROOT } from '../support/paths.js';
import { freePort } from '../support/ports.js';
import { type SlowProxy, slowProxy } from '../support/slow-proxy.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

const execFileAsync = promisify(execFile);
const CLI = CLI_ENTRY;
let world: World;
let user: TestUser;
let env: NodeJS.ProcessEnv;
/** Where the CLI keeps unfinished uploads (XDG_CONFIG_HOME/tess/uploads.json, in this world's data dir). */
let stateFile: string;
/** A stored file of the CLI user, uploaded once through the CLI. */
let stored: { id: string; data: Buffer; hash: string };

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI; resolves with the exit code and output whether it failed or not. */
async function tess(args: string[], extraEnv: NodeJS.ProcessEnv = {}, cwd?: string): Promise<Outcome> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args], {
      env: { ...env, ...extraEnv },
      cwd,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

/** A failure is exactly one readable line on stderr and a non-zero exit, never a stack trace. */
function expectOneLineError(outcome: Outcome, pattern: RegExp): void {
  expect(outcome.code, outcome.stderr).not.toBe(0);
  expect(outcome.stderr.trimEnd().split('\n'), outcome.stderr).toHaveLength(1);
  expect(outcome.stderr).toMatch(pattern);
  expect(outcome.stderr).not.toMatch(/TypeError|ENOENT|EISDIR|ENOTDIR|EEXIST|\n\s+at /);
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

beforeAll(async () => {
  world = await createWorld({ workers: 'in-process' });
  user = await createUser(world.app.getHttpServer(), `cli_${world.id}`);
  const config = join(world.config.dataDir, 'config');
  stateFile = join(config, 'tess', 'uploads.json');
  env = { ...process.env, TESS_URL: world.base, TESS_TOKEN: user.token, XDG_CONFIG_HOME: config };
  const data = bytesOf(2 * 1024 * 1024 + 7);
  const input = join(world.config.dataDir, 'in.bin');
  await writeFile(input, data);
  const up = await tess(['upload', input]);
  expect(up.code, up.stderr).toBe(0);
  const [id, hash, name] = up.stdout.trim().split(/\s+/);
  expect(name).toBe('in.bin');
  stored = { id: id!, data, hash: hash! };
}, 60_000);

afterAll(async () => {
  await world?.close();
});

describe('npm run tess (command-line client, built by npm test)', () => {
  it('uploads, lists, reports status and downloads a byte-identical copy', async () => {
    expect(stored.hash).toBe(sha256(stored.data));
    expect((await tess(['ls'])).stdout).toContain(stored.id);
    const status = JSON.parse((await tess(['status', stored.id])).stdout);
    expect(status).toMatchObject({ id: stored.id, status: 'completed' });

    const out = join(world.config.dataDir, 'out.bin');
    const down = await tess(['download', stored.id, out]);
    expect(down.code, down.stderr).toBe(0);
    expect(sha256(await readFile(out))).toBe(stored.hash);
  });

  it('explains a missing token and a server error in one line, exiting non-zero', async () => {
    const noToken = await tess(['ls'], { TESS_TOKEN: '' });
    expect(noToken).toMatchObject({ code: 1 });
    expect(noToken.stderr).toContain('Set TESS_TOKEN');
    const bad = await tess(['ls'], { TESS_TOKEN: 'tess_nope' });
    expect(bad.stderr).toMatch(/^401 Unauthorized: The bearer token is invalid or has been revoked/);
    expectOneLineError(bad, /^401/);
  });

  it('answers --help for itself and every command without a token', async () => {
    const top = await tess(['--help'], { TESS_TOKEN: '' });
    expect(top.code).toBe(0);
    for (const command of ['upload', 'status', 'download', 'ls'])
      expect(top.stdout).toContain(`tess ${command}`);
    for (const command of ['upload', 'status', 'download', 'ls']) {
      const own = await tess([command, '-h'], { TESS_TOKEN: '' });
      expect(own.code, command).toBe(0);
      expect(own.stdout, command).toMatch(new RegExp(`^usage: tess ${command}`));
    }
    expectOneLineError(await tess(['download', '--bogus']), /Unknown option '--bogus'.*tess download --help/);
    expectOneLineError(await tess(['nope']), /unknown command "nope"/);
  });

  it('is installable as the `tess` bin: package.json points at the built entry, which has a shebang', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(pkg.bin.tess).toBe(relative(ROOT, CLI_ENTRY));
    expect((await readFile(CLI_ENTRY, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('turns an unreachable TESS_URL, an unknown id and a missing local file into one line each', async () => {
    const port = await freePort();
    expectOneLineError(
      await tess(['ls'], { TESS_URL: `http://127.0.0.1:${port}` }),
      new RegExp(`^Cannot reach TESS at http://127.0.0.1:${port} \\(ECONNREFUSED\\); check TESS_URL`),
    );
    expectOneLineError(await tess(['status', randomUUID()]), /^404 Not Found: No such job/);
    const target = join(world.config.dataDir, 'never.bin');
    expectOneLineError(await tess(['download', randomUUID(), target]), /^404 Not Found: No such file/);
    expect(await exists(target)).toBe(false);
    expect(await exists(`${target}.partial`)).toBe(false);
    const missing = join(world.config.dataDir, 'missing.bin');
    expectOneLineError(await tess(['upload', missing]), new RegExp(`^${missing}: no such file`));
  });

  it('downloads into a directory under the stored name, and overwrites only with --force', async () => {
    const dir = join(world.config.dataDir, 'into-dir');
    await mkdir(dir);
    const first = await tess(['download', stored.id, dir]);
    expect(first.code, first.stderr).toBe(0);
    const target = join(dir, 'in.bin');
    expect(sha256(await readFile(target))).toBe(stored.hash);

    await writeFile(target, 'mine');
    expectOneLineError(await tess(['download', stored.id, dir]), /in\.bin exists; pass --force/);
    expectOneLineError(await tess(['download', stored.id, target]), /in\.bin exists; pass --force/);
    expect(await readFile(target, 'utf8')).toBe('mine');
    const forced = await tess(['download', '--force', stored.id, dir]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(sha256(await readFile(target))).toBe(stored.hash);

    const cwd = join(world.config.dataDir, 'cwd');
    await mkdir(cwd);
    expect((await tess(['download', stored.id], {}, cwd)).code).toBe(0);
    expect(sha256(await readFile(join(cwd, 'in.bin')))).toBe(stored.hash);

    expectOneLineError(
      await tess(['download', stored.id, join(dir, 'no-such-dir', 'x.bin')]),
      /no-such-dir: no such directory/,
    );
  });

  it('replaces a .partial of another try and resumes one of the same file with Range', async () => {
    const target = join(world.config.dataDir, 'resume.bin');
    const partial = `${target}.partial`;
    const etag = `"sha256-${stored.hash}"`;

    await writeFile(partial, 'left over by an older client');
    const replaced = await tess(['download', stored.id, target]);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(sha256(await readFile(target))).toBe(stored.hash);
    expect(await exists(partial)).toBe(false);
    expect(await exists(`${partial}.etag`)).toBe(false);

    // The right ETag but a prefix that differs from the file: only a Range request leaves it in place,
    // and the SHA-256 check then refuses the result instead of writing it.
    const half = 1024 * 1024;
    const wrongPrefix = Buffer.from(stored.data.subarray(0, half));
    wrongPrefix[0] = wrongPrefix[0]! ^ 0xff;
    const other = join(world.config.dataDir, 'resume-other.bin');
    await writeFile(`${other}.partial`, wrongPrefix);
    await writeFile(`${other}.partial.etag`, etag);
    expectOneLineError(
      await tess(['download', stored.id, other]),
      /does not match the stored SHA-256; .*resume-other\.bin was not written/,
    );
    expect(await exists(other)).toBe(false);
    expect(await exists(`${other}.partial`)).toBe(false);

    await writeFile(partial, stored.data.subarray(0, half));
    await writeFile(`${partial}.etag`, etag);
    const resumed = await tess(['download', '--force', stored.id, target]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(sha256(await readFile(target))).toBe(stored.hash);
    expect(await exists(partial)).toBe(false);

    await writeFile(partial, stored.data.subarray(0, half));
    await writeFile(`${partial}.etag`, '"sha256-of-another-file"');
    const stale = await tess(['download', '--force', stored.id, target]);
    expect(stale.code, stale.stderr).toBe(0);
    expect(sha256(await readFile(target))).toBe(stored.hash);
  });
});

/** The CLI's unfinished uploads: state-file key -> { url, sha256 }. */
async function unfinished(): Promise<Record<string, { url: string; sha256: string }>> {
  return JSON.parse(await readFile(stateFile, 'utf8').catch(() => '{}'));
}

/** HEAD of a tus upload URL straight at the gateway: its status and offset. */
async function head(url: string): Promise<{ status: number; offset: number }> {
  const res = await request(world.server)
    .head(new URL(url).pathname)
    .set({ ...user.auth, 'Tus-Resumable': '1.0.0' });
  return { status: res.status, offset: Number(res.headers['upload-offset']) };
}

describe('tess upload (tus, resumable)', () => {
  let proxy: SlowProxy;

  beforeAll(async () => {
    proxy = await slowProxy(world.base);
  });

  afterAll(async () => {
    await proxy?.close();
  });

  /**
   * Starts `tess upload` through the proxy slowed to 1 MiB/s and kills the process (SIGKILL) once the
   * server holds at least 1 MiB of the file: what an interrupted upload leaves is the state file's URL.
   */
  async function killedMidUpload(path: string, size: number): Promise<{ url: string; offset: number }> {
    proxy.rate = MiB;
    const child = spawn(process.execPath, [CLI, 'upload', '--chunk-size', '256KiB', path], {
      env: { ...env, TESS_URL: proxy.base },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const url = await waitFor(
        'the CLI to send 1 MiB',
        async () => {
          const entry = Object.values(await unfinished())[0];
          return entry && (await head(entry.url)).offset >= MiB ? entry.url : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      child.kill('SIGKILL');
      await exited;
      // What was already on its way still lands: wait until the server's offset stands still.
      let last = -1;
      const { status, offset } = await waitFor('the offset to settle', async () => {
        const now = await head(url);
        const settled = now.offset === last;
        last = now.offset;
        if (!settled) await new Promise((r) => setTimeout(r, 300));
        return settled ? now : undefined;
      });
      expect(status).toBe(200);
      expect(offset).toBeGreaterThanOrEqual(MiB);
      expect(offset).toBeLessThan(size);
      return { url, offset };
    } finally {
      child.kill('SIGKILL');
      proxy.rate = 0;
    }
  }

  it('resumes an upload whose CLI process was killed: only the rest is sent, stored once with the right SHA-256', async () => {
    const data = randomBytes(6 * MiB + 123);
    const path = join(world.config.dataDir, 'killed.bin');
    await writeFile(path, data);
    const { url, offset } = await killedMidUpload(path, data.length);
    expect(Object.values(await unfinished())[0]).toMatchObject({ url, sha256: sha256(data) });

    proxy.sent = 0;
    const resumed = await tess(['upload', '--chunk-size', '256KiB', path], { TESS_URL: proxy.base });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(
      `resuming killed.bin from ${(offset / MiB).toFixed(1)} MiB (${offset} bytes)`,
    );
    const [id, hash, name] = resumed.stdout.trim().split(/\s+/);
    expect(id).toBe(url.split('/').pop());
    expect(name).toBe('killed.bin');
    expect(hash).toBe(sha256(data));
    // The resumed run sent the rest (plus requests' headers), not the whole file again.
    expect(proxy.sent).toBeLessThan(data.length - offset + 256 * 1024);

    expect(await auditCount(world, id!, 'upload.started')).toBe(1);
    expect(await auditCount(world, id!, 'upload.accepted')).toBe(1);
    const listed = (await tess(['ls'])).stdout.split('\n').filter((line) => line.endsWith('  killed.bin'));
    expect(listed).toHaveLength(1);
    const view = await request(world.server).get(`/api/v1/files/${id}`).set(user.auth).expect(200);
    expect(view.body).toMatchObject({
      sha256: sha256(data),
      clientSha256: sha256(data),
      clientVerified: true,
    });
    expect(await unfinished()).toEqual({});
  }, 90_000);

  it('--no-resume cancels the unfinished upload and creates a new one', async () => {
    const data = randomBytes(4 * MiB);
    const path = join(world.config.dataDir, 'again.bin');
    await writeFile(path, data);
    const { url } = await killedMidUpload(path, data.length);
    const oldId = url.split('/').pop()!;

    const fresh = await tess(['upload', '--no-resume', path], { TESS_URL: proxy.base });
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).not.toContain('resuming');
    const [id, hash] = fresh.stdout.trim().split(/\s+/);
    expect(id).not.toBe(oldId);
    expect(hash).toBe(sha256(data));
    expect((await head(url)).status).toBe(404);
    expect(await auditCount(world, oldId, 'upload.cancelled')).toBe(1);
    expect(await auditCount(world, id!, 'upload.started')).toBe(1);
    expect(await unfinished()).toEqual({});
  }, 90_000);

  it('starts over when the remembered upload is gone (expired, cancelled), saying so', async () => {
    const path = join(world.config.dataDir, 'gone.bin');
    await writeFile(path, randomBytes(600_000));
    const key = JSON.stringify([path, 600_000, Math.trunc((await stat(path)).mtimeMs)]);
    const missing = `${world.base}/api/v1/tus/${randomUUID()}`;
    await mkdir(join(stateFile, '..'), { recursive: true });
    await writeFile(stateFile, JSON.stringify({ [key]: { url: missing, sha256: 'f'.repeat(64) } }));
    const over = await tess(['upload', path]);
    expect(over.code, over.stderr).toBe(0);
    expect(over.stderr).toContain('the earlier upload of gone.bin is gone; starting over');
    expect(over.stdout.trim().split(/\s+/)[1]).toBe(sha256(await readFile(path)));
    expect(await unfinished()).toEqual({});
  }, 90_000);

  it('uploads an empty file (complete at creation) and several files in one command', async () => {
    const empty = join(world.config.dataDir, 'empty.bin');
    const other = join(world.config.dataDir, 'other.bin');
    await writeFile(empty, '');
    await writeFile(other, 'other');
    const up = await tess(['upload', empty, other]);
    expect(up.code, up.stderr).toBe(0);
    const lines = up.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/));
    expect(lines.map(([, hash, name]) => [hash, name])).toEqual([
      [sha256(''), 'empty.bin'],
      [sha256('other'), 'other.bin'],
    ]);
    expect(await unfinished()).toEqual({});
  });

  it('refuses a bad --chunk-size and reports a refused upload in one line, exiting non-zero', async () => {
    const path = join(world.config.dataDir, 'small.bin');
    await writeFile(path, 'small');
    for (const size of ['1k', 'lots', '1g0'])
      expectOneLineError(
        await tess(['upload', '--chunk-size', size, path]),
        /--chunk-size must be between 256KiB and 512MiB/,
      );
    expectOneLineError(
      await tess(['upload', path], { TESS_TOKEN: 'tess_nope' }),
      /^small\.bin: 401: The bearer token is invalid or has been revoked/,
    );
    expect(await unfinished()).toEqual({});
  });
});
