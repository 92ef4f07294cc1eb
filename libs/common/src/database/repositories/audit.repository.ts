import { Injectable } from '@nestjs/common';
import { DataSource, type Repository } from 'typeorm';
import { type AuditAction, AuditEventEntity } from '../entities/audit-event.entity.js';

export interface AuditRecord {
  action: AuditAction;
  userId?: string | null;
  fileId?: string | null;
  ip?: string | null;
  details?: Record<string, string | number | boolean | null>;
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
}
