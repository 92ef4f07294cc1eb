import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** Who may administer TESS (docs/security.md item 37). */
export const USER_ROLES = ['user', 'admin'] as const;
export type UserRole = (typeof USER_ROLES)[number];

/** `disabled`: nothing of the user's works; `deleting`: disabled while the delete-user job runs. */
export const USER_STATUSES = ['active', 'disabled', 'deleting'] as const;
export type UserStatus = (typeof USER_STATUSES)[number];

const bigintOrNull = {
  to: (v: number | null | undefined) => v,
  from: (v: string | null) => (v === null ? null : Number(v)),
};

@Entity({ name: 'users' })
export class UserEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** As typed at registration; uniqueness is case-insensitive (unique index on lower(username)). */
  @Column({ type: 'varchar', length: 80 })
  username!: string;

  @Column({ type: 'varchar', length: 254 })
  email!: string;

  /** PHC string, `$argon2id$v=19$m=...,t=...,p=...$salt$hash`. */
  @Column({ name: 'password_hash', type: 'text' })
  passwordHash!: string;

  @Column({ type: 'varchar', length: 16, default: 'user' })
  role!: UserRole;

  @Column({ type: 'varchar', length: 16, default: 'active' })
  status!: UserStatus;

  /** Overrides QUOTA_BYTES for this user: null follows it, 0 means no limit. */
  @Column({ name: 'quota_bytes', type: 'bigint', nullable: true, transformer: bigintOrNull })
  quotaBytes!: number | null;

  /** Overrides QUOTA_FILES for this user: null follows it, 0 means no limit. */
  @Column({ name: 'quota_files', type: 'integer', nullable: true })
  quotaFiles!: number | null;

  @Column({ name: 'last_login_at', type: 'timestamptz', nullable: true })
  lastLoginAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}

/**
 * The quotas that apply to `user`: its own overrides, else the installation's (0: no limit either way).
 */
export function effectiveQuota(
  user: Pick<UserEntity, 'quotaBytes' | 'quotaFiles'> | null,
  defaults: { quotaBytes: number; quotaFiles: number },
): { quotaBytes: number; quotaFiles: number } {
  return {
    quotaBytes: user?.quotaBytes ?? defaults.quotaBytes,
    quotaFiles: user?.quotaFiles ?? defaults.quotaFiles,
  };
}
