import { randomUUID } from 'node:crypto';
import type { DataSource, Repository } from 'typeorm';
import { type AuditVerifyReport, chainOf, linkHash, verifyAuditChains } from '../../audit/audit-chain.js';
import type { AuditKeyring } from '../../audit/audit-keyring.js';
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

/**
 * The audit trail, chained (libs/common/src/audit, docs/security.md item 33). Built by DatabaseModule with
 * the audit keyring; not an @Injectable class of its own.
 */
export class AuditRepository {
  private readonly repo: Repository<AuditEventEntity>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly keyring: AuditKeyring,
  ) {
    this.repo = dataSource.getRepository(AuditEventEntity);
  }

  /**
   * Appends the event to its chain in one short transaction: the chain's head row is created or locked
   * (`INSERT ... ON CONFLICT DO UPDATE` takes the row lock), the link computed, the event inserted and the
   * head moved on. Writers of one chain queue on that row, so the chain never forks; other chains are not
   * held up. Plain SQL: every upload and every stored file writes one.
   */
  async record(event: AuditRecord): Promise<void> {
    const chain = chainOf(event.userId);
    const { keyRef, key } = await this.keyring.current();
    const details = event.details ?? {};
    await this.dataSource.transaction(async (m) => {
      const [head] = (await m.query(
        `INSERT INTO audit_chain_heads AS h (chain, seq) VALUES ($1, 0)
         ON CONFLICT (chain) DO UPDATE SET updated_at = now() RETURNING h.seq, h.hash`,
        [chain],
      )) as [{ seq: string; hash: Buffer | null }];
      const content = {
        chain,
        seq: Number(head.seq) + 1,
        id: randomUUID(),
        action: event.action,
        fileId: event.fileId ?? null,
        ip: event.ip ?? null,
        details,
        createdAt: new Date(),
        keyRef,
      };
      const prev = head.hash ?? Buffer.alloc(32);
      const hash = linkHash(key, prev, content);
      await m.query(
        `WITH e AS (
           INSERT INTO audit_events (id, chain, seq, prev_hash, hash, key_ref, user_id, action, file_id, ip, details, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12) RETURNING seq)
         UPDATE audit_chain_heads SET seq = (SELECT seq FROM e), hash = $5, updated_at = now() WHERE chain = $2`,
        [
          content.id,
          chain,
          content.seq,
          prev,
          hash,
          keyRef,
          event.userId ?? null,
          event.action,
          content.fileId,
          content.ip,
          JSON.stringify(details),
          content.createdAt,
        ],
      );
    });
  }

  /** Verifies the chain of `userId`'s events (or every chain): see verifyAuditChains. */
  verify(options: { userId?: string } = {}): Promise<AuditVerifyReport> {
    return verifyAuditChains(this.dataSource, this.keyring, {
      only: options.userId ? chainOf(options.userId) : undefined,
    });
  }

  listForUser(userId: string, limit = 100): Promise<AuditEventEntity[]> {
    return this.repo.find({ where: { userId }, order: { createdAt: 'DESC' }, take: limit });
  }
  /** One page of a user's events, newest first (keyset on created_at, id; the user_id, created_at index). */
  pageForUser(userId: string, query: AuditQuery): Promise<AuditPage> {
    return this.page({ ...query, userId });
  }

  /**
   * One page of every user's events (the admin's audit search), newest first; `userId` narrows it to one
   * user's (deleted users' events have none and show only unfiltered).
   */
  async page(query: AuditQuery & { userId?: string }): Promise<AuditPage> {
    const where = ['true'];
    const params: unknown[] = [];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (query.userId) where.push(`user_id = ${param(query.userId)}`);
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
