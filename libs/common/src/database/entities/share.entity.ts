import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A share link: one file of its owner, for a while, a few times (docs/security.md 31a-31l). */
@Entity({ name: 'shares' })
export class ShareEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'owner_id', type: 'uuid' })
  ownerId!: string;

  /** Null once the file is deleted (the link is revoked first and answers 410). */
  @Column({ name: 'file_id', type: 'uuid', nullable: true })
  fileId!: string | null;

  /** SHA-256 (hex) of the link token; the token itself is shown once and never stored. */
  @Column({ name: 'token_hash', type: 'char', length: 64 })
  tokenHash!: string;

  /** argon2id of the link's password; null: no password. */
  @Column({ name: 'password_hash', type: 'text', nullable: true })
  passwordHash!: string | null;

  @Column({ type: 'varchar', length: 200, nullable: true })
  note!: string | null;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  /** Null: unlimited. */
  @Column({ name: 'max_downloads', type: 'int', nullable: true })
  maxDownloads!: number | null;

  /** Completed whole-file downloads. */
  @Column({ type: 'int', default: 0 })
  downloads!: number;

  @Column({ name: 'last_download_at', type: 'timestamptz', nullable: true })
  lastDownloadAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;
}
