import { BadRequestException, Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { z } from 'zod';
import { type AuditEventEntity, AuditRepository, InvalidCursorError, UserRepository } from '#common';
import { LABELS, TYPES } from '../home/activity.controller.js';
import { utcLabel } from '../home/home.controller.js';

/** Events per page of the admin's audit search; rows per database round trip of the CSV export. */
export const ADMIN_AUDIT_PAGE = 50;
const EXPORT_BATCH = 500;

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An optional query string: empty counts as absent. */
const optional = () =>
  z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined));

/** The admin's audit search: by user (name or id), type (the Activity page's groups), UTC days. */
export const adminAuditQuerySchema = z.object({
  user: optional().refine((v) => v === undefined || v.length <= 80, 'user must be at most 80 characters'),
  type: optional().refine(
    (v) => v === undefined || Object.hasOwn(TYPES, v),
    `type must be one of ${Object.keys(TYPES).join(', ')}`,
  ),
  from: optional().refine((v) => v === undefined || DAY.test(v), 'from must be a date (YYYY-MM-DD)'),
  to: optional().refine((v) => v === undefined || DAY.test(v), 'to must be a date (YYYY-MM-DD)'),
  cursor: optional().refine((v) => v === undefined || v.length <= 200, 'cursor is too long'),
});
export type AdminAuditQuery = z.infer<typeof adminAuditQuerySchema>;

/**
 * A CSV cell, quoted, that a spreadsheet shows as text: a cell starting with `=`, `+`, `-`, `@` (or a
 * tab or carriage return, which some spreadsheets skip before reading a formula) gets a leading `'`
 * (OWASP "CSV Injection"). Quotes are doubled inside the quoted cell (RFC 4180).
 */
export function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

const CSV_COLUMNS = ['time', 'user_id', 'username', 'action', 'label', 'file_id', 'ip', 'details'];

/** Every user's audit events for the admin: search a page at a time, or export as streamed CSV. */
@Injectable()
export class AdminAudit {
  constructor(
    private readonly audit: AuditRepository,
    private readonly users: UserRepository,
  ) {}

  /** The repository's filter for a search; null when the user named does not exist (no events). */
  private async filter(q: AdminAuditQuery) {
    const from = q.from ? new Date(`${q.from}T00:00:00Z`) : undefined;
    const before = q.to ? new Date(new Date(`${q.to}T00:00:00Z`).getTime() + 86_400_000) : undefined;
    if ((from && Number.isNaN(from.getTime())) || (before && Number.isNaN(before.getTime())))
      throw new BadRequestException('from and to must be real dates.');
    if (from && before && from >= before) throw new BadRequestException('from must not be after to.');
    let userId: string | undefined;
    if (q.user) {
      const user = UUID.test(q.user)
        ? await this.users.findById(q.user)
        : await this.users.findByUsername(q.user);
      if (!user) return null;
      userId = user.id;
    }
    return { userId, from, before, actions: q.type ? TYPES[q.type]!.actions : undefined };
  }

  async search(q: AdminAuditQuery) {
    const filter = await this.filter(q);
    if (!filter) return { items: [], nextCursor: null };
    try {
      const page = await this.audit.page({ ...filter, cursor: q.cursor, limit: ADMIN_AUDIT_PAGE });
      return { items: await this.named(page.items), nextCursor: page.nextCursor };
    } catch (error) {
      if (error instanceof InvalidCursorError) throw new BadRequestException(error.message);
      throw error;
    }
  }

  /**
   * Writes the matching events to `res` as CSV, newest first, a batch at a time (memory is bounded by
   * one batch, whatever the number of events). Returns how many rows went out; the caller ends `res`.
   */
  async exportCsv(q: AdminAuditQuery, res: Response): Promise<number> {
    const filter = await this.filter(q);
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', 'attachment; filename="tess-audit.csv"');
    res.setHeader('Cache-Control', 'no-store');
    res.write(`${CSV_COLUMNS.join(',')}\r\n`);
    let rows = 0;
    let cursor: string | undefined;
    while (filter) {
      const page = await this.audit.page({ ...filter, cursor, limit: EXPORT_BATCH });
      const named = await this.named(page.items);
      const chunk = named
        .map((e) =>
          [
            e.createdAt.toISOString(),
            e.userId,
            e.username,
            e.action,
            e.label,
            e.fileId,
            e.ip,
            JSON.stringify(e.details),
          ]
            .map(csvCell)
            .join(','),
        )
        .join('\r\n');
      if (chunk && !res.write(`${chunk}\r\n`)) await new Promise((resolve) => res.once('drain', resolve));
      rows += page.items.length;
      if (!page.nextCursor || res.destroyed) break;
      cursor = page.nextCursor;
    }
    return rows;
  }

  /** The events with their user's current name (a deleted user's events have none). */
  private async named(events: AuditEventEntity[]) {
    const names = new Map<string, string>();
    for (const id of new Set(events.map((e) => e.userId).filter((v): v is string => v !== null))) {
      const user = await this.users.findById(id);
      if (user) names.set(id, user.username);
    }
    return events.map((e) => ({
      id: e.id,
      createdAt: e.createdAt,
      when: utcLabel(e.createdAt),
      userId: e.userId,
      username: e.userId ? (names.get(e.userId) ?? null) : null,
      action: e.action,
      label: LABELS[e.action] ?? e.action,
      fileId: e.fileId,
      ip: e.ip,
      details: e.details,
    }));
  }
}
