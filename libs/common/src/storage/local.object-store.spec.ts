import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalObjectStore } from './local.object-store.js';
import {
  chunkedBody,
  describeObjectStoreContract,
  newKey,
  readAll,
  sha256,
  stallingBody,
} from './object-store.contract.js';
import { InvalidObjectKeyError } from './object-store.js';

let base: string;
let store: LocalObjectStore;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'tess-local-store-'));
  store = new LocalObjectStore({ root: join(base, 'data', 'objects') });
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describeObjectStoreContract('LocalObjectStore', () => store);

/** The temp-name prefix of a key: the first 32 hex digits of its SHA-256. */
function partialPrefix(key: string): string {
  return `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.`;
}

describe('LocalObjectStore', () => {
  it('stores key objects/<id> as <root>/objects/<id>, directories 0700 and files 0600', async () => {
    const key = newKey();
    await store.put(key, chunkedBody(Buffer.from('x')));
    const file = join(store.root, key);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(file))).mode & 0o777).toBe(0o700);
    expect((await stat(store.root)).mode & 0o777).toBe(0o700);
  });

  it.each([
    '../escape',
    'objects/../../escape',
    'objects/..',
    'a..b',
    '/etc/passwd',
    'objects\\..\\x',
    'objects/x\u0000y',
    'objects/x\ny',
    'objects//x',
    'objects/',
    '',
    'objects/.hidden',
    `objects/${'a'.repeat(1100)}`,
  ])('rejects the key %j before touching the file system', async (key) => {
    await expect(store.put(key, chunkedBody(Buffer.from('x')))).rejects.toBeInstanceOf(InvalidObjectKeyError);
    await expect(store.getRange(key, 0)).rejects.toBeInstanceOf(InvalidObjectKeyError);
    await expect(store.stat(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
    await expect(store.delete(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
    await expect(store.abortIncomplete(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
  });

  it('writes to a temp file under .partial and exposes the object only after the rename', async () => {
    const key = newKey();
    const directory = dirname(join(store.root, key));
    const partials = join(store.root, '.partial');
    const controller = new AbortController();
    let seenWhileWriting: string[] = [];
    const put = store.put(key, stallingBody(randomBytes(3 * 1024 * 1024)), {
      signal: controller.signal,
      onProgress: () => {
        void readdir(partials).then((entries) => {
          seenWhileWriting = entries.filter((entry) => entry.startsWith(partialPrefix(key)));
          controller.abort();
        });
      },
    });
    await expect(put).rejects.toThrow();
    expect(seenWhileWriting).toHaveLength(1);
    expect(seenWhileWriting[0]).toMatch(/^[0-9a-f]{32}\.[0-9a-f]{12}\.partial$/);
    expect(await store.stat(key)).toBeNull();
    expect((await readdir(directory)).filter((entry) => entry.includes(key.slice(8)))).toEqual([]);
    expect((await readdir(partials)).filter((entry) => entry.startsWith(partialPrefix(key)))).toEqual([]);
  });

  it('abortIncomplete removes leftover temp files of that key only', async () => {
    const key = newKey();
    const other = `${key}0`;
    const partials = join(store.root, '.partial');
    await store.put(key, chunkedBody(Buffer.from('committed')));
    await writeFile(join(partials, `${partialPrefix(key)}0123456789ab.partial`), 'left by a crashed writer');
    await writeFile(join(partials, `${partialPrefix(key)}ba9876543210.partial`), 'another one');
    await writeFile(join(partials, `${partialPrefix(other)}0123456789ab.partial`), 'belongs to another key');
    expect(await store.abortIncomplete(key)).toBe(2);
    expect(await store.abortIncomplete(key)).toBe(0);
    expect(await store.abortIncomplete(other)).toBe(1);
    expect(sha256(await readAll(await store.getRange(key, 0)))).toBe(sha256(Buffer.from('committed')));
  });

  it('writes again after its directories were removed behind its back', async () => {
    const own = new LocalObjectStore({ root: join(base, 'removed-dirs') });
    await own.put(newKey(), chunkedBody(Buffer.from('first')));
    await rm(join(own.root, 'objects'), { recursive: true, force: true });
    await rm(join(own.root, '.partial'), { recursive: true, force: true });
    const key = newKey();
    await own.put(key, chunkedBody(Buffer.from('second')));
    expect((await readAll(await own.getRange(key, 0))).toString()).toBe('second');
  });

  it('abortIncomplete on a directory that does not exist yet finds nothing', async () => {
    const fresh = new LocalObjectStore({ root: join(base, 'never-created') });
    expect(await fresh.abortIncomplete('objects/x')).toBe(0);
  });

  it('check fails with a readable message when the root cannot be a directory', async () => {
    const file = join(base, 'a-file');
    await writeFile(file, 'not a directory');
    const broken = new LocalObjectStore({ root: join(file, 'objects') });
    await expect(broken.check()).rejects.toThrow(/Local object store .*a-file\/objects is not writable/);
  });

  it('check creates a missing root and leaves no probe file', async () => {
    const fresh = new LocalObjectStore({ root: join(base, 'fresh', 'objects') });
    await fresh.check();
    expect(await readdir(fresh.root)).toEqual([]);
  });

  it('reads a consistent object while it is replaced', async () => {
    const key = newKey();
    const first = randomBytes(4 * 1024 * 1024);
    await store.put(key, chunkedBody(first));
    const reading = await store.getRange(key, 0);
    await store.put(key, chunkedBody(randomBytes(10)));
    expect(sha256(await readAll(reading))).toBe(sha256(first));
  });
});
