import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../support/bytes.js';
import { upload, waitFor, waitForStored } from '../support/client.js';
import { bytesOf, postMultipart } from '../support/multipart.js';
import { RECOVER_ENTRY } from '../support/paths.js';
import { killAllProcesses, startProcess } from '../support/processes.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';
import { exportNamesAndDropDatabase } from './drill.js';

/**
 * The recovery drill with file versions (docs/security.md items 35 and 38): every version is its own
 * object, so `npm run recover` rebuilds each one byte for byte from the store and the master key alone, and
 * the export documented in scripts/recover.ts (file_versions joined to files) lets the manifest name each
 * object's file and version(s), a restored copy sharing its original's object included.
 */
describe('recovery drill with file versions', () => {
  let world: World;
  let alice: TestUser;
  let fileId: string;
  let v2Object: string;
  const bodies = [Buffer.concat([Buffer.from('v1 '), bytesOf(70_000)]), Buffer.from('version two\n')];
  let out: string;
  let namesFile: string;

  beforeAll(async () => {
    world = await createWorld({ workers: 'in-process' });
    alice = await createUser(world.app.getHttpServer(), `alice_${world.id}`);
    const [file] = await upload(world, alice, [{ filename: 'history.bin', body: bodies[0]! }]);
    fileId = file!.id;
    await waitForStored(world, fileId);
    const res = await postMultipart(
      `${world.base}/api/v1/files/${fileId}/versions`,
      [{ filename: 'history.bin', body: bodies[1]! }],
      { headers: alice.auth },
    );
    expect(res.status).toBe(202);
    v2Object = JSON.parse(res.body).upload.id;
    await waitFor('version 2', async () => (await world.files.findById(fileId))!.version === 2);
    await request(world.server)
      .post(`/api/v1/files/${fileId}/versions/1/restore`)
      .set(alice.auth)
      .expect(201);
    // The export scripts/recover.ts documents, made while the database existed.
    namesFile = await exportNamesAndDropDatabase(
      world,
      `SELECT json_agg(json_build_object('id', v.object_id, 'fileId', v.file_id, 'version', v.version,
         'filename', f.filename, 'sha256', v.sha256)) AS names
       FROM file_versions v JOIN files f ON f.id = v.file_id`,
    );
    out = join(world.config.dataDir, 'recovered');
  }, 90_000);

  afterAll(async () => {
    await killAllProcesses();
    await world?.close();
  });

  it('rebuilds every version from the bucket; the manifest names each object’s file and versions', async () => {
    const proc = startProcess(
      'recover',
      RECOVER_ENTRY,
      { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1' },
      {
        args: [
          '--from',
          world.config.dataDir,
          '--master-key',
          world.config.keys.masterKeyFile,
          '--out',
          out,
          '--names',
          namesFile,
        ],
      },
    );
    const status = await proc.waitForExit(120_000);
    expect({ code: status.code, output: proc.output() }).toMatchObject({
      code: 0,
      output: expect.stringContaining('2 recovered, 0 already recovered (skipped), 0 failed'),
    });
    const lines = (await readFile(join(out, 'manifest.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const entries = new Map(lines.map((e) => [e.id, e]));
    expect((await readFile(join(out, fileId))).equals(bodies[0]!)).toBe(true);
    expect((await readFile(join(out, v2Object))).equals(bodies[1]!)).toBe(true);
    // Version 3 is the restored copy of version 1: the same object.
    expect(entries.get(fileId)).toMatchObject({
      ok: true,
      sha256: sha256(bodies[0]!),
      name: 'history.bin',
      versions: [
        { fileId, version: 1 },
        { fileId, version: 3 },
      ],
    });
    expect(entries.get(v2Object)).toMatchObject({
      ok: true,
      sha256: sha256(bodies[1]!),
      name: 'history.bin',
      versions: [{ fileId, version: 2 }],
    });
  });
});
