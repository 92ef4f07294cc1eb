import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocalFileMasterKeySource } from './local-file.master-key-source.js';

/** When set, mkdir() (called only on the create path) lets a competing process create the keyring first. */
const race: { competitor?: { path: string; text: string } } = {};

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    mkdir: async (...args: Parameters<typeof real.mkdir>) => {
      const result = await real.mkdir(...args);
      const competitor = race.competitor;
      if (competitor) {
        race.competitor = undefined;
        await real.writeFile(competitor.path, competitor.text, { mode: 0o600, flag: 'wx' });
      }
      return result;
    },
  };
});

describe('LocalFileMasterKeySource creation race (deterministic)', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await fs.mkdtemp(join(tmpdir(), 'tess-keys-race-'));
  });
  afterEach(async () => {
    race.competitor = undefined;
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('adopts the keyring another process created between our existence check and our create', async () => {
    const path = join(dir, 'master.key');
    const theirs = randomBytes(32).toString('base64');
    race.competitor = { path, text: JSON.stringify({ current: 'theirs', keys: { theirs } }) };

    const current = await new LocalFileMasterKeySource({ path }).current();

    expect(current.id).toBe('theirs');
    expect(current.key.toString('base64')).toBe(theirs);
    expect(JSON.parse(await fs.readFile(path, 'utf8'))).toEqual({ current: 'theirs', keys: { theirs } });
    expect(await fs.readdir(dir)).toEqual(['master.key']);
  });
});
