import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalFileMasterKeySource } from './local-file.master-key-source.js';
import { MasterKeyNotFoundError } from './master-key-source.js';

interface KeyringJson {
  current: string;
  keys: Record<string, string>;
}

describe('LocalFileMasterKeySource', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tess-keys-'));
    path = join(dir, 'data', 'master.key');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const readKeyring = async (): Promise<KeyringJson> =>
    JSON.parse(await readFile(path, 'utf8')) as KeyringJson;
  const writeKeyring = async (ring: KeyringJson, mode = 0o600): Promise<void> => {
    await mkdir(join(dir, 'data'), { recursive: true, mode: 0o700 });
    await writeFile(path, JSON.stringify(ring), { mode });
    await chmod(path, mode);
  };

  it('creates a 0600 keyring in a 0700 directory on first run and reuses it afterwards', async () => {
    const first = await new LocalFileMasterKeySource({ path }).current();

    expect(first.key).toHaveLength(32);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'data'))).mode & 0o777).toBe(0o700);
    const ring = await readKeyring();
    expect(ring).toEqual({ current: first.id, keys: { [first.id]: first.key.toString('base64') } });

    const again = await new LocalFileMasterKeySource({ path }).current();
    expect(again.id).toBe(first.id);
    expect(again.key.equals(first.key)).toBe(true);
    expect(await readdir(join(dir, 'data'))).toEqual(['master.key']);
  });

  it.each([
    ['0644', 0o644],
    ['0640', 0o640],
    ['0604', 0o604],
    ['0660', 0o660],
    ['0704', 0o704],
  ])('refuses to start when the file has mode %s', async (_, mode) => {
    await writeKeyring({ current: 'k1', keys: { k1: randomBytes(32).toString('base64') } }, mode);
    await expect(new LocalFileMasterKeySource({ path }).current()).rejects.toThrow(/owner only.*chmod 600/);
  });

  it('accepts a keyring written by an operator with mode 0400', async () => {
    const key = randomBytes(32);
    await writeKeyring({ current: 'operator-1', keys: { 'operator-1': key.toString('base64') } }, 0o400);
    const current = await new LocalFileMasterKeySource({ path }).current();
    expect(current.id).toBe('operator-1');
    expect(current.key.equals(key)).toBe(true);
  });

  it('refuses a malformed keyring without quoting its content', async () => {
    const secret = randomBytes(32).toString('base64');
    const cases: Array<[string, RegExp]> = [
      [`{"current": "k1", "keys": {"k1": "${secret}"`, /not valid JSON/],
      ['[]', /expected \{"current"/],
      [JSON.stringify({ current: 'k2', keys: { k1: secret } }), /"current" names key "k2"/],
      [JSON.stringify({ current: 'k1', keys: { k1: secret.slice(4) } }), /key "k1" is not 32 bytes/],
      [JSON.stringify({ current: 'k1', keys: { k1: randomBytes(16).toString('base64') } }), /not 32 bytes/],
      [JSON.stringify({ current: 'k1', keys: { [secret]: secret, k1: secret } }), /a key id is not/],
      [JSON.stringify({ current: 42, keys: { k1: secret } }), /"current" must be a key id/],
    ];
    for (const [content, message] of cases) {
      await mkdir(join(dir, 'data'), { recursive: true });
      await writeFile(path, content, { mode: 0o600 });
      const error = await new LocalFileMasterKeySource({ path }).current().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(/is malformed/);
      expect(error?.message).toMatch(message);
      expect(error?.message).not.toContain(secret.slice(0, 12));
    }
  });

  it('does not create the file when createIfMissing is false', async () => {
    await expect(new LocalFileMasterKeySource({ path, createIfMissing: false }).current()).rejects.toThrow(
      /does not exist/,
    );
  });

  it('ends with exactly one key when several processes start at once on an empty data dir', async () => {
    const sources = Array.from({ length: 12 }, () => new LocalFileMasterKeySource({ path }));
    const keys = await Promise.all(sources.map((source) => source.current()));

    const ring = await readKeyring();
    expect(Object.keys(ring.keys)).toEqual([ring.current]);
    for (const key of keys) {
      expect(key.id).toBe(ring.current);
      expect(key.key.toString('base64')).toBe(ring.keys[ring.current]);
    }
    expect(await readdir(join(dir, 'data'))).toEqual(['master.key']);
  });

  it('ends with exactly one key when separate OS processes start at once', async () => {
    // Compile the source to plain ESM so that real Node processes (not just promises) race each other.
    const moduleDir = join(dir, 'module');
    await mkdir(moduleDir);
    await writeFile(join(moduleDir, 'package.json'), '{"type":"module"}');
    for (const name of ['local-file.master-key-source', 'master-key-source']) {
      const source = await readFile(new URL(`./${name}.ts`, import.meta.url), 'utf8');
      const { outputText } = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      await writeFile(join(moduleDir, `${name}.js`), outputText);
    }
    const script = [
      `const { LocalFileMasterKeySource } = await import(${JSON.stringify(join(moduleDir, 'local-file.master-key-source.js'))});`,
      'const startAt = Number(process.argv[2]);',
      'while (Date.now() < startAt) await new Promise((r) => setTimeout(r, 1));',
      `const { id } = await new LocalFileMasterKeySource({ path: ${JSON.stringify(path)} }).current();`,
      'process.stdout.write(id);',
    ].join('\n');
    const startAt = String(Date.now() + 400);
    const run = promisify(execFile);
    const outputs = await Promise.all(
      Array.from({ length: 6 }, () => run(process.execPath, ['--input-type=module', '-e', script, startAt])),
    );

    const ring = await readKeyring();
    expect(Object.keys(ring.keys)).toEqual([ring.current]);
    expect(outputs.map((o) => o.stdout)).toEqual(Array(6).fill(ring.current));
    expect(await readdir(join(dir, 'data'))).toEqual(['master.key']);
  });

  it('rotates atomically: a new current version, old versions kept, file still 0600', async () => {
    const source = new LocalFileMasterKeySource({ path });
    const before = await source.current();

    const { id } = await source.rotate();

    expect(id).not.toBe(before.id);
    expect((await source.current()).id).toBe(id);
    expect((await source.get(before.id)).equals(before.key)).toBe(true);
    const ring = await readKeyring();
    expect(ring.current).toBe(id);
    expect(Object.keys(ring.keys).sort()).toEqual([before.id, id].sort());
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, 'data'))).toEqual(['master.key']);
  });

  it('loses no version when two processes rotate at the same time', async () => {
    await new LocalFileMasterKeySource({ path }).current();
    const [a, b] = [new LocalFileMasterKeySource({ path }), new LocalFileMasterKeySource({ path })];

    const [ra, rb] = await Promise.all([a.rotate(), b.rotate()]);

    const ring = await readKeyring();
    expect(Object.keys(ring.keys)).toHaveLength(3);
    expect(ring.keys).toHaveProperty(ra.id);
    expect(ring.keys).toHaveProperty(rb.id);
  });

  it('gives up on a rotation lock held by someone else, naming the lock file', async () => {
    const source = new LocalFileMasterKeySource({ path, lockTimeoutMs: 50 });
    await source.current();
    await writeFile(`${path}.lock`, '99999\n');
    await expect(source.rotate()).rejects.toThrow(/master\.key\.lock; if none is running, remove/);
  });

  it('finds a version rotated in by another process by re-reading the file', async () => {
    const reader = new LocalFileMasterKeySource({ path });
    const old = await reader.current();
    const { id } = await new LocalFileMasterKeySource({ path }).rotate();

    // Without refreshCurrentAfterMs, current() does not re-read the file on its own...
    expect((await reader.current()).id).toBe(old.id);
    // ...but a version it has not seen makes it re-read, which also moves it to the new current version.
    expect((await reader.get(id)).length).toBe(32);
    expect((await reader.current()).id).toBe(id);
  });

  it('picks up another process rotation for current() once refreshCurrentAfterMs has passed', async () => {
    const reader = new LocalFileMasterKeySource({ path, refreshCurrentAfterMs: 0 });
    await reader.current();
    const { id } = await new LocalFileMasterKeySource({ path }).rotate();
    expect((await reader.current()).id).toBe(id);
  });

  it('rejects an unknown version with MasterKeyNotFoundError', async () => {
    const source = new LocalFileMasterKeySource({ path });
    await source.current();
    await expect(source.get('no-such-version')).rejects.toBeInstanceOf(MasterKeyNotFoundError);
  });

  it('refuses a keyring that changed the bytes of a version it already served', async () => {
    const source = new LocalFileMasterKeySource({ path });
    const { id } = await source.current();
    await writeKeyring({ current: id, keys: { [id]: randomBytes(32).toString('base64') } });
    await expect(source.check()).rejects.toThrow(/versions are immutable/);
  });

  it('check() fails once the file becomes readable by others or disappears', async () => {
    const source = new LocalFileMasterKeySource({ path });
    await source.check();
    await chmod(path, 0o644);
    await expect(source.check()).rejects.toThrow(/mode 0644/);
    await rm(path);
    await expect(source.check()).rejects.toThrow(/no longer exists/);
  });

  it('keeps key material out of the object when it is inspected or logged', async () => {
    const source = new LocalFileMasterKeySource({ path });
    const { key } = await source.current();
    const { inspect } = await import('node:util');
    const printed = `${inspect(source, { depth: 5, showHidden: true })} ${JSON.stringify(source)}`;
    expect(printed).not.toContain(key.toString('base64'));
    expect(printed).not.toContain(key.toString('hex').slice(0, 16));
  });
});
