import { Injectable } from '@nestjs/common';
import { DataSource, type Repository } from 'typeorm';
import { type AuditAction, AuditEventEntity } from '../entities/audit-event.entity.js';
import { decodeCursor, encodeCursor } from './file-cursor.js';

export interface AuditRecord {
  action: AuditAction;
  userId?: string | null;
  fileId?: string | null;
  ip?: string | null;
  details?: Record<string, string | number | boolean | null>;
}

/** What the Activity page asks for: some actions, a time window, a page after a cursor. */
export interface AuditQuery {
  actions?: readonly AuditAction[];
  /** Inclusive lower bound. */
  from?: Date;
  /** Exclusive upper bound. */
  before?: Date;
  /** A `nextCursor` of an earlier page (invalid: InvalidCursorError). */
  cursor?: string;
  limit: number;
}

export interface AuditPage {
  items: AuditEventEntity[];
  nextCursor: string | null;
}

@Injectable()
export class AuditRepository {
  private readonly repo: Repository<AuditEventEntity>;

  constructor(dataSource: DataSource) {
    this.repo = dataSource.getRepository(AuditEventEntity);
  }

  /** Plain SQL: every upload and every stored file writes one, and nothing is read back. */
  async record(event: AuditRecord): Promise<void> {
    await this.repo.query(
      'INSERT INTO audit_events (user_id, action, file_id, ip, details) VALUES ($1, $2, $3, $4, $5::jsonb)',
      [
        event.userId ?? null,
        event.action,
        event.fileId ?? null,
        event.ip ?? null,
        JSON.stringify(event.details ?? {}),
      ],
    );
  }

  listForUser(userId: string, limit = 100): Promise<AuditEventEntity[]> {
    return this.repo.find({ where: { userId }, order: { createdAt: 'DESC' }, take: limit });
  }
  /** One page of a user's events, newest first (keyset on created_at, id; the user_id, created_at index). */
  async pageForUser(userId: string, query: AuditQuery): Promise<AuditPage> {
    const where = ['user_id = $1'];
    const params: unknown[] = [userId];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (query.actions?.length) where.push(`action = ANY(${param(query.actions)}::varchar[])`);
    if (query.from) where.push(`created_at >= ${param(query.from)}`);
    if (query.before) where.push(`created_at < ${param(query.before)}`);
    if (query.cursor) {
      const c = decodeCursor(query.cursor);
      where.push(`(created_at, id) < (${param(c.createdAt)}::timestamptz, ${param(c.id)}::uuid)`);
    }
    const rows: Array<{
      id: string;
      user_id: string | null;
      action: AuditAction;
      file_id: string | null;
      ip: string | null;
      details: AuditEventEntity['details'];
      created_at: Date;
      cursor_time: string;
    }> = await this.repo.query(
      `SELECT id, user_id, action, file_id, ip, details, created_at,
              to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_time
         FROM audit_events WHERE ${where.join(' AND ')}
        ORDER BY created_at DESC, id DESC LIMIT ${param(query.limit + 1)}`,
      params,
    );
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) =>
        this.repo.create({
          id: r.id,
          userId: r.user_id,
          action: r.action,
          fileId: r.file_id,
          ip: r.ip,
          details: r.details,
          createdAt: r.created_at,
        }),
      ),
      nextCursor: rows.length > query.limit && last ? encodeCursor(last.cursor_time, last.id) : null,
    };
  }
}
