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

  async record(event: AuditRecord): Promise<void> {
    await this.repo.insert({
      action: event.action,
      userId: event.userId ?? null,
      fileId: event.fileId ?? null,
      ip: event.ip ?? null,
      details: event.details ?? {},
    });
  }

  listForUser(userId: string, limit = 100): Promise<AuditEventEntity[]> {
    return this.repo.find({ where: { userId }, order: { createdAt: 'DESC' }, take: limit });
  }
}
