import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';

/**
 * Cursor = base64url of `<created_at in UTC with microseconds>|<id>`, newest first. PostgreSQL keeps
 * microseconds; a cursor cut to JavaScript's milliseconds would skip rows created in the same millisecond.
 */
export interface FileCursor {
  createdAt: string;
  id: string;
}

export class InvalidCursorError extends Error {
  constructor() {
    super('cursor is not valid; use the nextCursor value of a previous page');
    this.name = 'InvalidCursorError';
  }
}

export function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(`${createdAt}|${id}`).toString('base64url');
}

const CURSOR_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether every field of the timestamp is in range. Date.parse is not enough: V8 rolls
 * `2024-02-30` over to March 1st, while PostgreSQL rejects it ("date/time field value out of range").
 */
export function validTime(iso: string): boolean {
  const m = CURSOR_TIME.exec(iso);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return false;
  // Day 0 of the next month is the last day of this one (setUTCFullYear, unlike Date.UTC, keeps years < 100).
  const lastDay = new Date(0);
  lastDay.setUTCFullYear(year, month, 0);
  return day <= lastDay.getUTCDate();
}

/** Decodes a cursor this server issued; anything else (garbage, out-of-range fields) is an InvalidCursorError. */
export function decodeCursor(cursor: string): FileCursor {
  const canonical = cursor.replace(/=+$/, '');
  const [iso, id, ...rest] = Buffer.from(canonical, 'base64url').toString('utf8').split('|');
  if (rest.length > 0 || !iso || !id || !validTime(iso) || !UUID.test(id)) throw new InvalidCursorError();
  // Buffer skips characters outside the alphabet; a cursor we issued re-encodes to itself.
  if (encodeCursor(iso, id) !== canonical) throw new InvalidCursorError();
  return { createdAt: iso, id };
}

/** A keyset page of rows newest first (`created_at DESC, id DESC`), with the cursor of the next page. */
export interface KeysetPage<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * Runs `qb` (rows of `alias`, already filtered) as one keyset page newest first after `cursor`: the files
 * list and the share links list page alike. Reads one row more than `limit` to know whether a next
 * page exists.
 */
export async function keysetPage<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  alias: string,
  limit: number,
  cursor?: string,
): Promise<KeysetPage<T>> {
  qb.orderBy(`${alias}.created_at`, 'DESC')
    .addOrderBy(`${alias}.id`, 'DESC')
    // created_at as text with all six fractional digits, for the cursor.
    .addSelect(
      `to_char(${alias}.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
      'cursor_time',
    )
    .limit(limit + 1);
  if (cursor) {
    const c = decodeCursor(cursor);
    qb.andWhere(
      `(${alias}.created_at, ${alias}.id) < (CAST(:createdAt AS timestamptz), CAST(:id AS uuid))`,
      c,
    );
  }
  const { entities, raw } = await qb.getRawAndEntities<{ cursor_time: string }>();
  const items = entities.slice(0, limit);
  const last = items[items.length - 1] as (T & { id: string }) | undefined;
  return {
    items,
    nextCursor:
      entities.length > limit && last ? encodeCursor(raw[items.length - 1]!.cursor_time, last.id) : null,
  };
}
