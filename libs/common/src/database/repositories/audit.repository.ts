import { randomUUID } from 'node:crypto';
import type { DataSource, Repository } from 'typeorm';
import { type AuditVerifyReport, chainOf, linkHash, verifyAuditChains } from '../../audit/audit-chain.js';
import type { AuditKeyring } from '../../audit/audit-keyring.js';
import { type AuditAction, AuditEventEntity } from '../entities/audit-event.entity.js';

export interface AuditRecord {
  action: AuditAction;
  userId?: string | null;
  fileId?: string | null;
  ip?: string | null;
  details?: Record<string, string | number | boolean | null>;
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
}
