import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataSourceOptions, FileEntity, FileRepository, migrate, preparedStatement } from '#common';
import { createWorld, type World } from '../support/world.js';

let world: World;
let ds: DataSource;
let files: FileRepository;

beforeAll(async () => {
  world = await createWorld({ gateway: 'none' });
  const options = dataSourceOptions(world.config);
  const migrator = new DataSource(options);
  await migrator.initialize();
  await migrate(migrator);
  await migrator.destroy();
  // One connection: every statement below runs on the session that prepared it.
  ds = new DataSource({ ...options, extra: { ...options.extra, max: 1 } } as typeof options);
  await ds.initialize();
  files = new FileRepository(ds);
});

afterAll(async () => {
  await ds?.destroy();
  await world.close();
});

async function newOwner(): Promise<string> {
  const ownerId = randomUUID();
  await ds.query(`INSERT INTO users (id, username, email, password_hash) VALUES ($1, $2, $3, 'x')`, [
    ownerId,
    `u${ownerId.slice(0, 8)}`,
    `${ownerId.slice(0, 8)}@example.test`,
  ]);
  return ownerId;
}

async function queuedFile(ownerId: string): Promise<string> {
  const id = randomUUID();
  await files.createQueued({
    id,
    ownerId,
    folderId: null,
    versionOf: null,
    filename: `${id}.bin`,
    contentType: 'application/octet-stream',
    size: 3,
    tempPath: id,
    keyRef: null,
    wrappedKey: null,
    clientSha256: null,
  });
  return id;
}

describe('prepared statements', () => {
  it('keep TypeORM result shapes and errors, and the claim survives a migration that adds a column', async () => {
    const ownerId = await newOwner();
    const first = await queuedFile(ownerId);
    const claimed = await files.claimForProcessing(first);
    expect(claimed).toMatchObject({ id: first, status: 'processing', attempts: 1, size: 3 });
    expect(claimed?.createdAt).toBeInstanceOf(Date);

    // A column added while the worker runs (a rolling upgrade's migration): the prepared claim names its
    // columns, so its result type is unchanged and it keeps working on the same session.
    await ds.query('ALTER TABLE files ADD COLUMN prepared_probe integer');
    const second = await queuedFile(ownerId);
    expect(await files.claimForProcessing(second)).toMatchObject({ id: second, status: 'processing' });
    await ds.query('ALTER TABLE files DROP COLUMN prepared_probe');

    // An UPDATE answers [rows, count] and a failing statement a QueryFailedError, as without a name.
    const update = preparedStatement('tess_test_touch', 'UPDATE files SET attempts = attempts WHERE id = $1');
    expect(await ds.query(update, [second])).toEqual([[], 1]);
    await expect(ds.query(update, ['not-a-uuid'])).rejects.toMatchObject({ name: 'QueryFailedError' });
    expect(() => preparedStatement('claim; DROP', 'SELECT 1')).toThrow(/Invalid prepared statement name/);
  });

  it('findById and findOwned hydrate what TypeORM would, and only the owner finds a file', async () => {
    const ownerId = await newOwner();
    const id = await queuedFile(ownerId);
    // Every kind of column set: a bigint, a bytea, dates, nullable text.
    await ds.query(
      `UPDATE files SET encrypted_size = 9007199254740000, wrapped_key = '\\x0102', error = 'e',
         upload_expires_at = now() WHERE id = $1`,
      [id],
    );
    const typeorm = await ds.getRepository(FileEntity).findOneBy({ id });
    expect(typeorm?.encryptedSize).toBe(9007199254740000);
    expect(await files.findById(id)).toEqual(typeorm);
    expect(await files.findOwned(ownerId, id)).toEqual(typeorm);
    expect(await files.findOwned(randomUUID(), id)).toBeNull();
    expect(await files.findById(randomUUID())).toBeNull();
    await ds.query('ALTER TABLE files ADD COLUMN prepared_probe integer');
    expect(await files.findOwned(ownerId, id)).toEqual(typeorm);
    await ds.query('ALTER TABLE files DROP COLUMN prepared_probe');
  });
});
