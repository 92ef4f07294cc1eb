import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

export const AUDIT_ACTIONS = [
  'user.registered',
  'login.succeeded',
  'login.failed',
  'login.throttled',
  'register.throttled',
  'logout',
  'password.changed',
  'password.change_failed',
  'password.change_throttled',
  'password.reset_requested',
  'password.reset_throttled',
  'password.reset_completed',
  'password.reset_failed',
  'mfa.totp_setup_started',
  'mfa.totp_enabled',
  'mfa.totp_disabled',
  'mfa.totp_disable_failed',
  'mfa.succeeded',
  'mfa.failed',
  'mfa.throttled',
  'mfa.recovery_code_used',
  'mfa.recovery_codes_regenerated',
  'mfa.reset',
  'mfa.passkey_added',
  'mfa.passkey_renamed',
  'mfa.passkey_removed',
  'session.ended',
  'token.created',
  'token.revoked',
  'upload.started',
  'upload.accepted',
  'upload.cancelled',
  'upload.expired',
  'file.stored',
  'file.failed',
  'file.rejected',
  'file.infected',
  'file.downloaded',
  'file.verified',
  'file.corrupt',
  'file.deleted',
  'file.version_restored',
  'file.version_deleted',
  'file.renamed',
  'file.moved',
  'files.archive_downloaded',
  'files.archive_aborted',
  'folder.created',
  'folder.renamed',
  'folder.moved',
  'folder.deleted',
  'share.created',
  'share.revoked',
  'share.viewed',
  'share.downloaded',
  'share.password_failed',
  'share.throttled',
  'admin.promoted',
  'admin.user_disabled',
  'admin.user_enabled',
  'admin.quota_changed',
  'admin.mfa_reset',
  'admin.user_delete_requested',
  'admin.user_deleted',
  'admin.invite_created',
  'admin.invite_revoked',
  'admin.job_retried',
  'admin.job_discarded',
  'admin.queue_actions_unlocked',
  'admin.audit_exported',
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

  /** `user:<id>` or `system` (`legacy`: recorded before the chain); see libs/common/src/audit. */
  @Column({ type: 'varchar', length: 80 })
  chain!: string;

  /** Position in the chain, from 1. */
  @Column({ type: 'bigint', transformer: { to: (v: number) => v, from: (v: string) => Number(v) } })
  seq!: number;

  @Column({ name: 'prev_hash', type: 'bytea', nullable: true })
  prevHash!: Buffer | null;

  @Column({ type: 'bytea', nullable: true })
  hash!: Buffer | null;

  @Column({ name: 'key_ref', type: 'varchar', length: 1024, nullable: true })
  keyRef!: string | null;
}
