import type { SelectQueryBuilder } from 'typeorm';
import type { FileEntity, FileStatus } from '../entities/file.entity.js';
import { decodeCursor, encodeCursor, InvalidCursorError, validTime } from './file-cursor.js';

/** The orders of the files list (GET /api/v1/files?sort=&order=). */
export const FILE_SORTS = ['createdAt', 'name', 'size'] as const;
export type FileSort = (typeof FILE_SORTS)[number];
export type SortOrder = 'asc' | 'desc';

/**
 * A filtered, sorted page of one owner's files. `folderId`: undefined lists every folder (what clients
 * that predate folders expect), null the root, else that folder. `q`: a case-insensitive substring of
 * the name.
 */
export interface FileListQuery {
  folderId?: string | null;
  q?: string;
  status?: FileStatus;
  sort: FileSort;
  order: SortOrder;
  limit: number;
  cursor?: string;
}

/**
 * The SQL value each order sorts by, always tie-broken on the id: each has its btree index
 * (migration 1765450000000) in a folder and across folders, so a page is an index range scan, never an
 * OFFSET. Names sort by their lower-cased form, the one the unique index and the search use.
 */
const KEYS: Record<FileSort, { expr: string; cast: string }> = {
  createdAt: { expr: 'f.created_at', cast: 'timestamptz' },
  name: { expr: 'lower(f.filename)', cast: 'text' },
  size: { expr: 'f.size', cast: 'bigint' },
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DIGITS = /^\d{1,16}$/;

interface Position {
  value: string;
  id: string;
}

/**
 * Cursors are opaque to clients. Newest first (the default, and the only order before sorting existed)
 * keeps its original form, `<created_at with microseconds>|<id>` (file-cursor.ts), so cursors handed out
 * before stay valid; every other order is base64url of `[sort, order, value, id]` in JSON, refused for
 * another sort or order than the one it was issued for.
 */
export function encodeListCursor(sort: FileSort, order: SortOrder, at: Position): string {
  if (sort === 'createdAt' && order === 'desc') return encodeCursor(at.value, at.id);
  return Buffer.from(JSON.stringify([sort, order, at.value, at.id])).toString('base64url');
}

export class CursorMismatchError extends InvalidCursorError {
  constructor() {
    super();
    this.message = 'cursor belongs to another sort or order; start again without a cursor';
  }
}

export function decodeListCursor(cursor: string, sort: FileSort, order: SortOrder): Position {
  const canonical = cursor.replace(/=+$/, '');
  const text = Buffer.from(canonical, 'base64url').toString('utf8');
  if (!text.startsWith('[')) {
    if (sort !== 'createdAt' || order !== 'desc') {
      decodeCursor(cursor); // garbage stays "not valid"; a real newest-first cursor is a mismatch
      throw new CursorMismatchError();
    }
    const c = decodeCursor(cursor);
    return { value: c.createdAt, id: c.id };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidCursorError();
  }
  if (!Array.isArray(parsed) || parsed.length !== 4 || !parsed.every((p) => typeof p === 'string')) {
    throw new InvalidCursorError();
  }
  const [s, o, value, id] = parsed as [string, string, string, string];
  if (!UUID.test(id) || !(FILE_SORTS as readonly string[]).includes(s) || (o !== 'asc' && o !== 'desc')) {
    throw new InvalidCursorError();
  }
  const valid =
    s === 'createdAt' ? validTime(value) : s === 'size' ? DIGITS.test(value) : value.length <= 1024;
  if (!valid || encodeListCursor(s as FileSort, o, { value, id }) !== canonical) {
    throw new InvalidCursorError();
  }
  if (s !== sort || o !== order) throw new CursorMismatchError();
  return { value, id };
}

/** `%`, `_` and `\` taken literally in a LIKE pattern. */
export function likeEscape(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Applies the query's filters, order and cursor to `qb` (files as `f`) and reads one page. */
export async function filePage(
  qb: SelectQueryBuilder<FileEntity>,
  query: FileListQuery,
): Promise<{ items: FileEntity[]; nextCursor: string | null }> {
  const { expr, cast } = KEYS[query.sort];
  const dir = query.order === 'asc' ? 'ASC' : 'DESC';
  if (query.folderId === null) qb.andWhere('f.folder_id IS NULL');
  else if (query.folderId !== undefined) qb.andWhere('f.folder_id = :folderId', { folderId: query.folderId });
  if (query.status) qb.andWhere('f.status = :status', { status: query.status });
  if (query.q) {
    // Served by files_filename_trgm_idx (pg_trgm) for three characters or more.
    qb.andWhere("lower(f.filename) LIKE :pattern ESCAPE '\\'", {
      pattern: `%${likeEscape(query.q.toLowerCase())}%`,
    });
  }
  if (query.cursor) {
    const at = decodeListCursor(query.cursor, query.sort, query.order);
    qb.andWhere(
      `(${expr}, f.id) ${query.order === 'asc' ? '>' : '<'} (CAST(:atValue AS ${cast}), CAST(:atId AS uuid))`,
      {
        atValue: at.value,
        atId: at.id,
      },
    );
  }
  qb.orderBy(expr, dir)
    .addOrderBy('f.id', dir)
    .addSelect(
      query.sort === 'createdAt'
        ? `to_char(f.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
        : `(${expr})::text`,
      'cursor_value',
    )
    .limit(query.limit + 1);
  const { entities, raw } = await qb.getRawAndEntities<{ cursor_value: string }>();
  const items = entities.slice(0, query.limit);
  const last = items[items.length - 1];
  return {
    items,
    nextCursor:
      entities.length > query.limit && last
        ? encodeListCursor(query.sort, query.order, {
            value: raw[items.length - 1]!.cursor_value,
            id: last.id,
          })
        : null,
  };
}
