import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, sha256 } from '../support/bytes.js';
import { upload, waitForStored } from '../support/client.js';
import { bytesOf } from '../support/multipart.js';
import { readObject, writeObject } from '../support/objects.js';
import { RECOVER_ENTRY } from '../support/paths.js';
import { killAllProcesses, startProcess } from '../support/processes.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type StoreKind, type World } from '../support/world.js';
import { exportNamesAndDropDatabase } from './drill.js';

/**
 * docs/security.md item 35, the recovery drill: files are uploaded and stored, the names are exported, the
 * database is dropped, and `npm run recover` rebuilds every file from the store and the master key alone
 * (no PostgreSQL, no Redis: their URLs point at nothing), byte for byte; a tampered object is reported and
 * not written; an interrupted run resumes.
 */

const SIZES = [0, 1, 64 * 1024, MiB - 16, 3 * MiB + 5];

describe.each<StoreKind>(['local', 's3'])('recovery drill with the %s store', (kind) => {
  let world: World;
  let alice: TestUser;
  const bodies = SIZES.map((size, i) => Buffer.concat([Buffer.from(`file ${i} `), bytesOf(size)]));
  let ids: string[] = [];
  let out: string;
  let namesFile: string;

  beforeAll(async () => {
    world = await createWorld({ store: kind, workers: 'in-process' });
    alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
    const files = await upload(
      world,
      alice,
      bodies.map((body, i) => ({ filename: `report-${i}.bin`, body })),
    );
    ids = files.map((f) => f.id);
    for (const id of ids) await waitForStored(world, id);
    // The export an operator keeps next to the backups: names (and hashes) are not in the objects.
    namesFile = await exportNamesAndDropDatabase(
      world,
      "SELECT json_agg(json_build_object('id', id, 'filename', filename, 'sha256', sha256)) AS names FROM files",
    );
    out = join(world.config.dataDir, 'recovered');
  }, 90_000);

  afterAll(async () => {
    await killAllProcesses();
    await world?.close();
  });

  function runRecover() {
    const storeEnv = Object.fromEntries(Object.entries(world.env).filter(([k]) => k.startsWith('S3_')));
    const proc = startProcess(
      'recover',
      RECOVER_ENTRY,
      { ...storeEnv, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1' },
      {
        args: [
          '--from',
          kind === 's3'
            ? `s3://${world.config.storage.driver === 's3' ? world.config.storage.bucket : ''}`
            : world.config.dataDir,
          '--master-key',
          world.config.keys.masterKeyFile,
          '--out',
          out,
          '--names',
          namesFile,
        ],
      },
    );
    return proc.waitForExit(120_000).then((status) => ({ status, output: proc.output() }));
  }

  async function manifest(): Promise<
    Map<string, { ok: boolean; sha256?: string; name?: string; error?: string }>
  > {
    const lines = (await readFile(join(out, 'manifest.jsonl'), 'utf8')).trim().split('\n');
    // The torn line an interruption left stays, alone on its line; every other line is whole.
    const entries = lines.filter((l) => l !== '{"id":"torn').map((l) => JSON.parse(l));
    return new Map(entries.map((e) => [e.id, e]));
  }

  it('recovers every file byte for byte from the store and the master key, without the database', async () => {
    const run = await runRecover();
    expect({ code: run.status.code, output: run.output }).toMatchObject({
      code: 0,
      output: expect.stringContaining(`${ids.length} recovered, 0 already recovered (skipped), 0 failed`),
    });
    const entries = await manifest();
    for (const [i, id] of ids.entries()) {
      expect((await readFile(join(out, id))).equals(bodies[i]!)).toBe(true);
      expect(entries.get(id)).toMatchObject({
        ok: true,
        sha256: sha256(bodies[i]!),
        name: `report-${i}.bin`,
      });
    }
  });

  it('resumes an interrupted run and reports a tampered object without writing it', async () => {
    // What an interruption leaves: the manifest cut after two objects, a half-written third.
    const text = (await readFile(join(out, 'manifest.jsonl'), 'utf8')).trim().split('\n');
    const kept = text.slice(0, 2).map((l) => JSON.parse(l).id as string);
    await writeFile(join(out, 'manifest.jsonl'), `${text.slice(0, 2).join('\n')}\n{"id":"torn`);
    for (const id of ids.filter((id) => !kept.includes(id))) await rm(join(out, id));
    const redo = ids.filter((id) => !kept.includes(id));
    await writeFile(join(out, `${redo[0]}.partial`), 'half');
    // And one object with a flipped byte in its last segment.
    const victim = redo.at(-1)!;
    const bytes = await readObject(world, victim);
    bytes[bytes.length - 20]! ^= 0x01;
    await writeObject(world, victim, bytes);

    const run = await runRecover();
    expect(run.status.code).toBe(1);
    expect(run.output).toContain(`${redo.length - 1} recovered, 2 already recovered (skipped), 1 failed`);
    expect(run.output).toMatch(new RegExp(`FAILED ${victim}: `));
    const entries = await manifest();
    expect(entries.get(victim)).toMatchObject({ ok: false, error: expect.any(String) });
    for (const [i, id] of ids.entries()) {
      if (id === victim) {
        await expect(readFile(join(out, id))).rejects.toThrow(/ENOENT/);
        await expect(readFile(join(out, `${id}.partial`))).rejects.toThrow(/ENOENT/);
        continue;
      }
      expect((await readFile(join(out, id))).equals(bodies[i]!)).toBe(true);
    }
  });
});
