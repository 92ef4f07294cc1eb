import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

export const AUDIT_ACTIONS = [
  'user.registered',
  'login.succeeded',
  'login.failed',
  'login.throttled',
  'register.throttled',
  'logout',
  'token.created',
  'token.revoked',
  'upload.accepted',
  'file.stored',
  'file.failed',
  'file.rejected',
  'file.infected',
  'file.downloaded',
  'file.verified',
  'file.corrupt',
  'file.deleted',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

@Entity({ name: 'audit_events' })
export class AuditEventEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId!: string | null;

  @Column({ type: 'varchar', length: 40 })
  action!: AuditAction;

  @Column({ name: 'file_id', type: 'uuid', nullable: true })
  fileId!: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  ip!: string | null;

  @Column({ type: 'jsonb', default: () => "'{}'::jsonb" })
  details!: Record<string, string | number | boolean | null>;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
