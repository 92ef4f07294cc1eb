import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager, Repository } from 'typeorm';
import {
  type AuditVerifyReport,
  chainOf,
  GENESIS_HASH,
  linkHash,
  verifyAuditChains,
} from '../../audit/audit-chain.js';
import type { AuditKeyring } from '../../audit/audit-keyring.js';
import { type AuditAction, AuditEventEntity } from '../entities/audit-event.entity.js';
import { preparedStatement } from '../prepared-statement.js';
import { decodeCursor, encodeCursor } from './file-cursor.js';

/** Events one group commit writes at most (a burst is split into transactions of this many). */
const MAX_GROUP = 100;

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

  /** Events waiting for the next group commit, with their callers. */
  private waiting: Array<{ event: AuditRecord; done: (error?: unknown) => void }> = [];
  /** The group commit in progress, if any. */
  private writing: Promise<void> | null = null;

  /**
   * Appends the event to its chain; resolves once it is committed. Events recorded while an earlier
   * commit is still running (concurrent uploads and stored files) wait for it and then go together in one
   * transaction (a group commit: one round trip for their chain heads, one for the events, one WAL flush),
   * so under load each event costs a fraction of a transaction, and alone it waits for nobody.
   */
  record(event: AuditRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ event, done: (error) => (error === undefined ? resolve() : reject(error)) });
      this.writing ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    // Callers of the same tick (the files of one request) join the first commit.
    await Promise.resolve();
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, MAX_GROUP);
      try {
        await this.append(batch.map((b) => b.event));
        for (const b of batch) b.done();
      } catch (error) {
        if (batch.length === 1) {
          batch[0]!.done(error);
          continue;
        }
        // One event the database refuses must not take the others with it: each on its own, as it came.
        for (const b of batch) await this.append([b.event]).then(() => b.done(), b.done);
      }
    }
    this.writing = null;
  }

  /**
   * Appends events to their chains in one short transaction: the chains' head rows are created or locked
   * (`INSERT ... ON CONFLICT DO UPDATE` takes the row locks, in chain order so that two group commits never
   * deadlock), the links computed in order, the events inserted and the heads moved on. Writers of one chain
   * queue on its row, so the chain never forks; other chains are not held up. Plain SQL: every upload and
   * every stored file writes one.
   */
  private async append(events: AuditRecord[]): Promise<void> {
    await this.dataSource.transaction((m) => this.appendWithin(m, events));
  }

  /**
   * Appends the event inside the caller's transaction `m`, which commits it (or not) with its own
   * changes: a file's `file.stored` event and its stored row are one commit. Take it last in the
   * transaction: the chain's head row stays locked until the commit.
   */
  recordWithin(m: EntityManager, event: AuditRecord): Promise<void> {
    return this.appendWithin(m, [event]);
  }

  private async appendWithin(m: EntityManager, events: AuditRecord[]): Promise<void> {
    const { keyRef, key } = await this.keyring.current();
    const chains = [...new Set(events.map((e) => chainOf(e.userId)))].sort();
    const heads = (await m.query(
      preparedStatement(
        'tess_audit_lock_heads',
        `INSERT INTO audit_chain_heads AS h (chain, seq) SELECT c, 0 FROM unnest($1::varchar[]) c ORDER BY c
         ON CONFLICT (chain) DO UPDATE SET updated_at = now() RETURNING h.chain, h.seq, h.hash`,
      ),
      [chains],
    )) as Array<{ chain: string; seq: string; hash: Buffer | null }>;
    const last = new Map(heads.map((h) => [h.chain, { seq: Number(h.seq), hash: h.hash ?? GENESIS_HASH }]));
    const rows = events.map((event) => {
      const chain = chainOf(event.userId);
      const head = last.get(chain)!;
      const details = event.details ?? {};
      const content = {
        chain,
        seq: head.seq + 1,
        id: randomUUID(),
        action: event.action,
        fileId: event.fileId ?? null,
        ip: event.ip ?? null,
        details,
        createdAt: new Date(),
        keyRef,
      };
      const hash = linkHash(key, head.hash, content);
      const row = { content, prev: head.hash, hash, userId: event.userId ?? null, details };
      last.set(chain, { seq: content.seq, hash });
      return row;
    });
    const column = <T>(pick: (row: (typeof rows)[number]) => T): T[] => rows.map(pick);
    await m.query(
      preparedStatement(
        'tess_audit_append',
        `WITH e AS (
           INSERT INTO audit_events (id, chain, seq, prev_hash, hash, key_ref, user_id, action, file_id, ip, details, created_at)
           SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::bigint[], $4::bytea[], $5::bytea[], $6::varchar[],
             $7::uuid[], $8::varchar[], $9::uuid[], $10::varchar[], $11::jsonb[], $12::timestamptz[])
           RETURNING chain, seq, hash)
         UPDATE audit_chain_heads h SET seq = t.seq, hash = t.hash, updated_at = now()
           FROM (SELECT DISTINCT ON (chain) chain, seq, hash FROM e ORDER BY chain, seq DESC) t
          WHERE h.chain = t.chain`,
      ),
      [
        column((r) => r.content.id),
        column((r) => r.content.chain),
        column((r) => r.content.seq),
        column((r) => r.prev),
        column((r) => r.hash),
        column(() => keyRef),
        column((r) => r.userId),
        column((r) => r.content.action),
        column((r) => r.content.fileId),
        column((r) => r.content.ip),
        column((r) => JSON.stringify(r.details)),
        column((r) => r.content.createdAt),
      ],
    );
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
