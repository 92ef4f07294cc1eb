import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userId } from '../support/client.js';
import { createUser, type TestUser } from '../support/users.js';
import { createWorld, type World } from '../support/world.js';

/**
 * GET /api/v1/files with search, folder, status, sort and order (issue 18): keyset pages for every order
 * return each file exactly once while files are added between pages; substring search; the cursor is
 * tied to its order.
 */

let world: World;
let alice: TestUser;
let aliceId: string;
let folderId: string;

type Item = {
  id: string;
  filename: string;
  size: number;
  createdAt: string;
  status: string;
  folderId?: string;
};

const NAMES = ['Report', 'IMPORT', 'passport', 'notes', 'a%b', 'a_b', 'Zeta', 'alpha', 'Beta', 'report-2'];

/** Rows straight into PostgreSQL: many share a created_at and a size, so only the id breaks ties. */
async function seed(n: number, folder: string | null, prefix: string): Promise<void> {
  await world.dataSource.query(
    `INSERT INTO files (id, owner_id, folder_id, filename, content_type, size, status, attempts, created_at, updated_at)
     SELECT gen_random_uuid(), $1, $2, $3 || (ARRAY[${NAMES.map((_, i) => `$${i + 5}`).join(',')}])[1 + g % ${NAMES.length}] || '-' || g || '.txt',
            'text/plain', (g % 7) * 100, CASE WHEN g % 5 = 0 THEN 'failed' ELSE 'queued' END, 0,
            timestamptz '2026-01-01' + ((g / 10) || ' seconds')::interval, now()
       FROM generate_series(1, $4) g`,
    [aliceId, folder, prefix, n, ...NAMES],
  );
}

beforeAll(async () => {
  world = await createWorld();
  alice = await createUser(world.server, `alice_${world.id}`);
  aliceId = await userId(world, alice);
  const res = await request(world.server).post('/api/v1/folders').set(alice.auth).send({ name: 'seeded' });
  folderId = res.body.id;
  await seed(150, null, '');
  // The same names in a folder: across folders (no folderId) names tie and the id decides.
  await seed(150, folderId, '');
}, 60_000);

afterAll(async () => {
  await world?.close();
});

const get = (query: string) => request(world.server).get(`/api/v1/files?${query}`).set(alice.auth);

function key(item: Item, sort: string): string | number {
  if (sort === 'name') return item.filename.toLowerCase();
  if (sort === 'size') return item.size;
  return item.createdAt;
}

describe.each([
  ['createdAt', 'desc'],
  ['createdAt', 'asc'],
  ['name', 'asc'],
  ['name', 'desc'],
  ['size', 'asc'],
  ['size', 'desc'],
])('sorted by %s %s', (sort, order) => {
  it.each([
    ['every folder', ''],
    ['one folder', 'folder'],
  ])('pages through %s with each file exactly once while files are added', async (_what, scope) => {
    const folderQuery = scope ? `&folderId=${folderId}` : '';
    const before = (
      await world.dataSource.query(
        `SELECT id FROM files WHERE owner_id = $1 ${scope ? 'AND folder_id = $2' : ''}`,
        scope ? [aliceId, folderId] : [aliceId],
      )
    ).map((r: { id: string }) => r.id) as string[];
    const seen: Item[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: request.Response = await get(
        `sort=${sort}&order=${order}&limit=17${folderQuery}${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(res.status, res.text).toBe(200);
      seen.push(...res.body.items);
      cursor = res.body.nextCursor;
      // Someone uploads meanwhile: new names, sizes and times on either side of the current position.
      await world.dataSource.query(
        `INSERT INTO files (id, owner_id, folder_id, filename, content_type, size, status, attempts, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'text/plain', $5, 'queued', 0, now(), now())`,
        [randomUUID(), aliceId, scope ? folderId : null, `added-${randomUUID()}.txt`, pages * 37],
      );
      pages++;
    } while (cursor);
    const ids = seen.map((i) => i.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of before) expect(ids).toContain(id);
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [key(seen[i - 1]!, sort), key(seen[i]!, sort)];
      const step = a === b ? (seen[i - 1]!.id < seen[i]!.id ? 'asc' : 'desc') : a < b ? 'asc' : 'desc';
      expect(step, `${seen[i - 1]!.filename} then ${seen[i]!.filename}`).toBe(order);
    }
    if (scope) for (const item of seen) expect(item.folderId).toBe(folderId);
  });
});

describe('indexes', () => {
  it('has a btree index per order (in a folder and across folders) and a pg_trgm index for the search', async () => {
    const rows: Array<{ indexname: string; indexdef: string }> = await world.dataSource.query(
      "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'files'",
    );
    const defs = Object.fromEntries(rows.map((r) => [r.indexname, r.indexdef]));
    expect(defs.files_folder_created_idx).toMatch(/\(owner_id, folder_id, created_at, id\)/);
    expect(defs.files_folder_name_idx).toMatch(/\(owner_id, folder_id, lower\(\(filename\)::text\), id\)/);
    expect(defs.files_folder_size_idx).toMatch(/\(owner_id, folder_id, size, id\)/);
    expect(defs.files_owner_name_idx).toMatch(/\(owner_id, lower\(\(filename\)::text\), id\)/);
    expect(defs.files_owner_size_idx).toMatch(/\(owner_id, size, id\)/);
    expect(defs.files_filename_trgm_idx).toMatch(/USING gin \(lower\(\(filename\)::text\) gin_trgm_ops\)/);
  });
});

describe('search and filters', () => {
  it('finds names by substring, case-insensitively, with % and _ taken literally', async () => {
    const port = await get(`q=PORT&folderId=root&limit=100`).expect(200);
    const names = port.body.items.map((i: Item) => i.filename);
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(n.toLowerCase()).toContain('port');
    expect(names.some((n: string) => n.startsWith('IMPORT'))).toBe(true);
    expect(names.some((n: string) => n.startsWith('passport'))).toBe(true);
    const percent = await get(`q=${encodeURIComponent('a%b')}&folderId=root&limit=100`).expect(200);
    expect(percent.body.items.length).toBeGreaterThan(0);
    for (const i of percent.body.items) expect(i.filename).toContain('a%b');
    const underscore = await get(`q=a_b&folderId=root&limit=100`).expect(200);
    for (const i of underscore.body.items) expect(i.filename).toContain('a_b');
    expect((await get('q=no-such-name-anywhere').expect(200)).body).toEqual({ items: [], nextCursor: null });
  });

  it('pages a search and filters by status', async () => {
    const all: Item[] = [];
    let cursor: string | null = null;
    do {
      const res: request.Response = await get(
        `q=report&sort=name&limit=9${cursor ? `&cursor=${cursor}` : ''}`,
      ).expect(200);
      all.push(...res.body.items);
      cursor = res.body.nextCursor;
    } while (cursor);
    const [{ n }] = await world.dataSource.query(
      "SELECT count(*)::int AS n FROM files WHERE owner_id = $1 AND lower(filename) LIKE '%report%'",
      [aliceId],
    );
    expect(all.length).toBe(n);
    const failed = await get('status=failed&limit=100').expect(200);
    expect(failed.body.items.length).toBeGreaterThan(0);
    for (const i of failed.body.items) expect(i.status).toBe('failed');
  });

  it('refuses a cursor of another order and bad parameters with 400; unknown ones are ignored as before', async () => {
    const page = await get('sort=name&limit=5').expect(200);
    const other = await get(`sort=size&limit=5&cursor=${page.body.nextCursor}`).expect(400);
    expect(other.body.message).toMatch(/cursor belongs to another sort or order/);
    await get(`sort=name&order=desc&limit=5&cursor=${page.body.nextCursor}`).expect(400);
    const newest = await get('limit=5').expect(200);
    await get(`sort=name&cursor=${newest.body.nextCursor}`).expect(400);
    for (const bad of [
      'sort=owner',
      'order=up',
      'status=lost',
      `q=${'x'.repeat(256)}`,
      'folderId=../x',
      'cursor=WyJuYW1lIl0',
    ]) {
      const res = await get(bad);
      expect(res.status, bad).toBe(400);
    }
    expect((await get('limit=3&_=1700000000000').expect(200)).body.items).toHaveLength(3);
  });
});
