import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDataSource, MIGRATIONS, migrate } from '#common';
import { createWorld, type World } from '../support/world.js';

/**
 * Migration 1765400000000-file-versions on a database that already holds files: every stored (or corrupt)
 * file becomes version 1 of itself, under its own id, with its facts; a file still in the pipeline has no
 * version yet; reverting drops the versions and the upload rows of new versions, and keeps every file.
 */
let world: World;

beforeAll(async () => {
  world = await createWorld({ gateway: 'none' });
});

afterAll(async () => {
  await world.close();
});

describe('the file versions migration', () => {
  it('makes each stored file its own version 1, leaves queued ones without a version, and reverts', async () => {
    // This one and any later: undone together, re-applied together.
    const index = MIGRATIONS.findIndex((m) => m.name === 'FileVersions1765400000000');
    expect(index).toBeGreaterThan(0);
    const undo = MIGRATIONS.length - index;
    const ds = createDataSource(world.config);
    await ds.initialize();
    try {
      await migrate(ds);
      for (let i = 0; i < undo; i++) await ds.undoLastMigration({ transaction: 'each' });
      const owner = randomUUID();
      await ds.query(`INSERT INTO users (id, username, email, password_hash) VALUES ($1, $2, $3, 'x')`, [
        owner,
        `m_${world.id}`,
        `m_${world.id}@example.test`,
      ]);
      const [stored, queued] = [randomUUID(), randomUUID()];
      await ds.query(
        `INSERT INTO files (id, owner_id, filename, content_type, size, status, sha1, sha256, encrypted_size,
           storage_driver, object_key, key_ref, wrapped_key, stored_at)
         VALUES ($1, $2, 'a.bin', 'application/octet-stream', 10, 'stored', $3, $4, 99, 'local', $5, 'local:k', '\\x01', now())`,
        [stored, owner, 'a'.repeat(40), 'b'.repeat(64), `objects/${stored}`],
      );
      await ds.query(
        `INSERT INTO files (id, owner_id, filename, content_type, size, status)
         VALUES ($1, $2, 'q.bin', 'text/plain', 5, 'queued')`,
        [queued, owner],
      );

      expect(await migrate(ds)).toHaveLength(undo);
      const versions = await ds.query(
        'SELECT file_id, version, object_id, size, sha256, object_key, key_ref, status FROM file_versions',
      );
      expect(versions).toEqual([
        {
          file_id: stored,
          version: 1,
          object_id: stored,
          size: '10',
          sha256: 'b'.repeat(64),
          object_key: `objects/${stored}`,
          key_ref: 'local:k',
          status: 'stored',
        },
      ]);
      const files = await ds.query(
        'SELECT id, version, version_count, object_id FROM files ORDER BY version_count',
      );
      expect(files).toEqual([
        { id: queued, version: 1, version_count: 0, object_id: null },
        { id: stored, version: 1, version_count: 1, object_id: null },
      ]);

      for (let i = 0; i < undo; i++) await ds.undoLastMigration({ transaction: 'each' });
      expect((await ds.query('SELECT count(*)::int AS n FROM files'))[0].n).toBe(2);
      expect(await migrate(ds)).toHaveLength(undo);
    } finally {
      await ds.destroy();
    }
  });
});
